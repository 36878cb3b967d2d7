"""Benchmark: what the champion's tree size costs in AUC and buys in explanation time.

Exact TreeSHAP (`pred_contrib`) grows with the number of leaves and the square of the
depth, so the champion is kept shallow (depth ≤ 4, 15 leaves). This fits the champion at
several sizes on the same Wenzhou-scale snapshots — fit on 2018-12-31, early stopping and
calibration on 2019-06-30, out-of-time test on 2019-12-31 (outcome year 2020) — and prints,
for each, the trees kept, the OOT ROC AUC and the TreeSHAP time per row (one thread and
both cores, on a sample of the test rows).

    .venv/bin/python bench/tree_size.py --warehouse W [--sample 50000]

Issue 6 asks for the AUC cost of the limit chosen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # bench/features.py would shadow the `features` package

#: (label, max_depth, num_leaves, n_estimators); the first is the champion's default
SIZES = (
    ("depth 4, 15 leaves (champion)", 4, 15, 600),
    ("depth 4, 15 leaves, up to 1,500 trees", 4, 15, 1_500),
    ("depth 6, 31 leaves", 6, 31, 1_500),
    ("depth 8, 63 leaves", 8, 63, 1_500),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=50_000, help="rows explained per size")
    args = parser.parse_args()

    from features.view.engine import duckdb_tables  # noqa: PLC0415
    from models.champion import LightGBMChampion  # noqa: PLC0415
    from models.datasets import TARGET, Design, snapshot  # noqa: PLC0415
    from models.metrics import roc_auc  # noqa: PLC0415

    design = Design.from_specs()
    with duckdb_tables(args.warehouse) as (_, tables):
        frames = {day: snapshot(tables, dt.date.fromisoformat(day))
                  for day in ("2018-12-31", "2019-06-30", "2019-12-31")}  # fmt: skip
    fit, val, test = (frames[d] for d in sorted(frames))
    x_fit, x_val, x_test = (design.matrix(f) for f in (fit, val, test))
    y_fit, y_val, y_test = (f[TARGET].to_numpy() for f in (fit, val, test))
    print(f"rows: fit {len(fit):,}, validation {len(val):,}, test {len(test):,} "
          f"(bad rate {y_test.mean():.2%})")  # fmt: skip
    rows = np.random.default_rng(0).choice(len(x_test), min(args.sample, len(x_test)), False)
    sample = x_test.iloc[rows]
    print(f"{'size':40} {'trees':>6} {'fit s':>7} {'OOT AUC':>8} {'SHAP µs/row 1 thr':>18} "
          f"{'2 thr':>7}")  # fmt: skip
    for label, depth, leaves, trees in SIZES:
        model = LightGBMChampion(n_estimators=trees, max_depth=depth, num_leaves=leaves,
                                 monotone=design.monotone, categorical=list(design.categorical))  # fmt: skip
        started = time.perf_counter()
        model.fit(x_fit, y_fit, eval_set=(x_val, y_val))
        fitted = time.perf_counter() - started
        auc = roc_auc(y_test, model.predict_proba(x_test)[:, 1])
        booster, matrix = model.booster_, model._apply(sample)[0]
        timings = []
        for threads in (1, 2):
            started = time.perf_counter()
            booster.predict(matrix, pred_contrib=True, num_threads=threads)
            timings.append((time.perf_counter() - started) / len(sample) * 1e6)
        print(f"{label:40} {model.best_iteration_:>6} {fitted:>7.0f} {auc:>8.4f} "
              f"{timings[0]:>18.1f} {timings[1]:>7.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
