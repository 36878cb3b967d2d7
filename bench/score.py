"""Benchmark: batch scoring at Wenzhou scale, with and without reasons, and one entity.

Builds the view as of ``--as-of`` (default 2020-12-31) from a warehouse (by default: generate
1,100,000 entities and ingest them), trains a champion on the 2018-12-31 snapshot (early
stopping and calibration on 2019-06-30: the model's size, not its training data, sets the
scoring cost), then scores every entity with `scoring.batch.score_view` — without reasons,
then with the top reason codes (exact TreeSHAP) — and one entity at a time in process.

    .venv/bin/python bench/score.py [--warehouse PATH] [--entities 1100000] [--singles 2000]

Targets (issue 6, 2 cores): 1.1M entities in under 1 minute; with top reasons for every
entity in under 10 minutes; one entity with reasons p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this folder comes first on sys.path and bench/features.py would shadow
# the `features` package: put the project root first instead
sys.path[0] = str(ROOT)


def _champion(tables: object) -> object:
    from models.calibration import CalibratedModel, Calibrator  # noqa: PLC0415
    from models.champion import LightGBMChampion  # noqa: PLC0415
    from models.datasets import TARGET, Design, snapshot  # noqa: PLC0415

    design = Design.from_specs()
    fit = snapshot(tables, dt.date(2018, 12, 31))  # type: ignore[arg-type]
    val = snapshot(tables, dt.date(2019, 6, 30))  # type: ignore[arg-type]
    champion = LightGBMChampion(monotone=design.monotone, categorical=list(design.categorical))
    champion.fit(design.matrix(fit), fit[TARGET].to_numpy(),
                 eval_set=(design.matrix(val), val[TARGET].to_numpy()))  # fmt: skip
    calibrator = Calibrator().fit(
        champion.predict_proba(design.matrix(val))[:, 1], val[TARGET].to_numpy()
    )
    print(f"champion          {champion.best_iteration_} trees, depth ≤ {champion.max_depth}, "
          f"{champion.num_leaves} leaves")  # fmt: skip
    return CalibratedModel(champion, calibrator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--as-of", default="2020-12-31")
    parser.add_argument("--singles", type=int, default=2_000, help="single-entity calls timed")
    args = parser.parse_args()

    from features.view import build_view  # noqa: PLC0415
    from features.view.engine import duckdb_tables  # noqa: PLC0415
    from scoring.batch import score_view  # noqa: PLC0415
    from scoring.policy import load_policy  # noqa: PLC0415
    from scoring.single import score_one  # noqa: PLC0415

    policy = load_policy()
    with tempfile.TemporaryDirectory(prefix="wzcredit-bench-") as tmp:
        warehouse = args.warehouse
        if warehouse is None:
            warehouse = Path(tmp) / "warehouse.duckdb"
            for command in (
                ["generate", "--entities", str(args.entities), "--out", f"{tmp}/delivery"],
                ["ingest", f"{tmp}/delivery", "--warehouse", str(warehouse), "--json"],
            ):
                subprocess.run([sys.executable, "-m", "wzcredit.cli", *command], cwd=ROOT,
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        with duckdb_tables(warehouse) as (_, tables):
            model = _champion(tables)
            view = build_view(tables, dt.date.fromisoformat(args.as_of)).table
    frame = view.to_pandas()
    print(f"view              {view.num_rows:,} entities as of {args.as_of}")

    started = time.perf_counter()
    plain = score_view(frame, model, policy, reasons=False)
    seconds = time.perf_counter() - started
    print(f"batch, no reasons {seconds:.1f} s = {plain.num_rows / seconds:,.0f} rows/s "
          "(target 1.1M < 60 s)")  # fmt: skip

    started = time.perf_counter()
    explained = score_view(frame, model, policy, reasons=True)
    seconds = time.perf_counter() - started
    print(f"batch, reasons    {seconds:.1f} s = {explained.num_rows / seconds:,.0f} rows/s "
          "(target 1.1M < 600 s)")  # fmt: skip

    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(frame), args.singles)
    records = frame.iloc[rows].to_dict("records")  # one request's row, as the service holds it
    latencies = []
    for record in records:
        started = time.perf_counter()
        score_one(record, model, policy, reasons=True)
        latencies.append(time.perf_counter() - started)
    ms = np.array(latencies[10:]) * 1000  # the first calls warm caches up
    print(f"one entity+reasons p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f}"
          f" ms over {ms.size} calls (target p99 < 5 ms)")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory (RSS) {peak:.2f} GiB")


if __name__ == "__main__":
    main()
