"""Benchmark: train the champion and challenger at Wenzhou scale.

Generates 1,100,000 entities (or uses ``--warehouse``), builds the labelled snapshots and
trains both models with ``models.train.train_main`` in a child process, printing snapshot,
fit and total wall time, the peak RSS, and the out-of-time metrics.

    .venv/bin/python bench/train.py [--warehouse PATH --truth DIR] [--entities 1100000]
                                    [--data-end 2020-12-31] [--predictions-out FILE]

``--predictions-out`` writes the champion's OOT test PDs (``uscc``, ``pd``) as Parquet, for
`bench/oracle_gap.py --predictions`.

``--data-end 2019-12-31`` moves the out-of-time test year from 2020 (the COVID shock, which
no model trained on earlier years can foresee) to 2019.

Target (issue 5): the champion trains in under 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import datetime as dt, json, logging, resource, sys, time
from pathlib import Path
from features.view.engine import duckdb_tables
from models.datasets import SnapshotPlan
from models.train import train_main
marks = {}
start = time.perf_counter()
def progress(message):
    marks[message] = time.perf_counter() - start
truth, predictions = sys.argv[3], sys.argv[4]
with duckdb_tables(Path(sys.argv[1])) as (_, tables):
    result = train_main(tables, SnapshotPlan.for_data_ending(dt.date.fromisoformat(sys.argv[2])),
                        truth=Path(truth) if truth else None, progress=progress)
if predictions:
    import pandas as pd
    pd.DataFrame({"uscc": result.test_uscc, "pd": result.test_pd["champion"]}).to_parquet(
        predictions)
total = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"total": total, "marks": marks, "peak_bytes": peak,
                  "result": result.to_dict()}, default=str))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--truth", type=Path)
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--data-end", default="2020-12-31", help="last day of the data")
    parser.add_argument("--predictions-out", type=Path, help="write the champion's test PDs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wzcredit-bench-") as tmp:
        warehouse, truth = args.warehouse, args.truth
        if warehouse is None:
            warehouse = Path(tmp) / "warehouse.duckdb"
            truth = Path(tmp) / "delivery" / "truth"
            for command in (
                ["generate", "--entities", str(args.entities), "--out", f"{tmp}/delivery"],
                ["ingest", f"{tmp}/delivery", "--warehouse", str(warehouse), "--json"],
            ):
                subprocess.run(
                    [sys.executable, "-m", "wzcredit.cli", *command],
                    cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
        started = time.perf_counter()
        out = args.predictions_out.resolve() if args.predictions_out else ""
        command = [sys.executable, "-c", _CHILD, str(warehouse), args.data_end,
                   str(truth or ""), str(out)]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        report = json.loads(done.stdout.strip().splitlines()[-1])
    marks = report["marks"]
    snap = marks.get("fitting the champion (LightGBM) and the challenger (scorecard)", 0.0)
    fitted = next((v for k, v in marks.items() if k.startswith("champion fitted")), snap)
    result = report["result"]
    print(f"rows              {result['rows']}")
    print(f"snapshots built   {snap:.0f} s")
    print(f"champion fitted   {fitted - snap:.0f} s   (target < 600 s)")
    print(f"models fitted     {report['total'] - snap:.0f} s (champion + challenger + calibration"
          " + OOT scoring)")  # fmt: skip
    print(
        f"total             {report['total']:.0f} s; wall incl. start {time.perf_counter() - started:.0f} s"
    )
    print(f"peak memory (RSS) {report['peak_bytes'] / 2**30:.2f} GiB")
    for name in ("champion", "challenger"):
        m = result[name]
        print(
            f"{name:<11} OOT AUC {m['roc_auc']:.4f}  KS {m['ks']:.4f}  Brier {m['brier']:.5f}  "
            f"calibration error {m['calibration_error']:.5f} ({m['calibration']})"
        )
    if "oracle_auc" in result:
        print(f"oracle AUC        {result['oracle_auc']:.4f}")


if __name__ == "__main__":
    main()
