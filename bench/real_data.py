"""Benchmark: the champion/challenger pipeline on real public credit datasets.

Repeated stratified 5-fold cross-validation (5 splits, 3 repeats, random_state=0), as in the
models issue: German credit and Taiwan default (UCI, copied into tests/data/) and FICO HELOC
(read from ../shared/data when present — its terms forbid copying it into the project;
skipped cleanly when absent). Prints mean ± std ROC AUC of both models and the target, and
the mean Brier score and calibration error of their calibrated PDs (a better ranking must
not cost calibration).

    .venv/bin/python bench/real_data.py [--only german,taiwan,heloc]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # import the project (bench/features.py would shadow `features`)

import pandas as pd  # noqa: E402

from models.train import read_table, train_table  # noqa: E402


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    target: str
    bad: str
    goal: float
    drop: tuple[str, ...] = ()
    special_codes: tuple[float, ...] | None = None


DATASETS = (
    Dataset("german", ROOT / "tests/data/german_credit.csv", "creditability", "bad", 0.790),
    Dataset("heloc", ROOT.parent / "shared/data/fico_heloc/heloc_dataset_v1.csv",
            "RiskPerformance", "Bad", 0.795, special_codes=(-7.0, -8.0, -9.0)),
    Dataset("taiwan", ROOT / "tests/data/taiwan_default.csv", "default.payment.next.month",
            "1", 0.785, drop=("ID",)),
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="german,heloc,taiwan")
    args = parser.parse_args()
    rows = []
    for data in DATASETS:
        if data.name not in args.only.split(","):
            continue
        if not data.path.exists():
            print(f"{data.name}: skipped, {data.path} is not here")
            continue
        frame = read_table(data.path).drop(columns=list(data.drop))
        started = time.perf_counter()
        result = train_table(frame, data.target, data.bad, special_codes=data.special_codes)
        seconds = time.perf_counter() - started
        champion, challenger = (result[m]["roc_auc"] for m in ("champion", "challenger"))
        best = max(champion["mean"], challenger["mean"])
        rows.append({
            "dataset": data.name, "rows": len(frame),
            "champion AUC": f"{champion['mean']:.4f} ± {champion['std']:.4f}",
            "challenger AUC": f"{challenger['mean']:.4f} ± {challenger['std']:.4f}",
            "best": round(best, 4), "target": data.goal,
            "met": "yes" if best >= data.goal else "NO",
            **{f"{name} {label}": round(result[name][metric]["mean"], 4)
               for metric, label in (("brier", "Brier"), ("calibration_error", "ECE"))
               for name in ("champion", "challenger")},
            "seconds": round(seconds),
        })  # fmt: skip
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
