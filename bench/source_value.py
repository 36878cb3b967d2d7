"""Does the three-in-one view beat every single source? A logistic-regression check.

Builds the view and the 12-month default labels at several as-of dates, trains a plain
logistic regression (median imputation with missing indicators, standardisation, one-hot
categories) on the earlier snapshots and tests it out of time on the last one, once per
feature group: entity facts alone, each of the three sources alone (with the entity facts
too, as a lender would always have them) and the whole view. Prints ROC AUC overall, for
entities without a PBOC file (thin files) and with one.

    .venv/bin/python bench/source_value.py [--warehouse PATH | --entities 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # import the project, not bench/features.py, as `features`

import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from features.view import build_view, feature_specs  # noqa: E402
from features.view.engine import duckdb_tables  # noqa: E402
from models.labels import labels  # noqa: E402

TRAIN = ("2016-06-30", "2016-12-31", "2017-06-30", "2017-12-31")
TEST = "2018-06-30"


def snapshot(tables: dict, as_of: str) -> pd.DataFrame:  # type: ignore[type-arg]
    day = dt.date.fromisoformat(as_of)
    view = build_view(tables, day).table.to_pandas()
    y = labels(tables, day).to_pandas()[["uscc", "default_12m"]]
    return view.merge(y, on="uscc", how="inner")


def fit_auc(train: pd.DataFrame, test: pd.DataFrame, columns: list[str]) -> pd.Series:
    specs = {s.name: s for s in feature_specs()}
    categorical = [c for c in columns if specs[c].kind == "categorical"]
    numeric = [c for c in columns if c not in categorical]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True),
                                  StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), categorical),
        ]
    )  # fmt: skip
    model = make_pipeline(prep, LogisticRegression(max_iter=2000, C=0.5))
    model.fit(train[columns], train["default_12m"])
    score = model.predict_proba(test[columns])[:, 1]
    thin = test["pboc_has_file"] == 0
    return pd.Series(
        {
            "all": roc_auc_score(test["default_12m"], score),
            "no PBOC file": roc_auc_score(test.loc[thin, "default_12m"], score[thin]),
            "with PBOC file": roc_auc_score(test.loc[~thin, "default_12m"], score[~thin]),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wzcredit-check-") as tmp:
        warehouse = args.warehouse
        if warehouse is None:
            warehouse = Path(tmp) / "warehouse.duckdb"
            for command in (
                ["generate", "--entities", str(args.entities), "--seed", str(args.seed),
                 "--out", f"{tmp}/delivery"],
                ["ingest", f"{tmp}/delivery", "--warehouse", str(warehouse), "--json"],
            ):  # fmt: skip
                subprocess.run(
                    [sys.executable, "-m", "wzcredit.cli", *command],
                    cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
        started = time.perf_counter()
        with duckdb_tables(warehouse) as (_, tables):
            train = pd.concat([snapshot(tables, d) for d in TRAIN], ignore_index=True)
            test = snapshot(tables, TEST)
    print(f"train {len(train):,} rows at {', '.join(TRAIN)} (bad rate {train.default_12m.mean():.2%});"
          f" test {len(test):,} at {TEST} (bad rate {test.default_12m.mean():.2%}); "
          f"no PBOC file in test: {(test.pboc_has_file == 0).mean():.1%}; "
          f"built in {time.perf_counter() - started:.0f} s")  # fmt: skip
    by_source: dict[str, list[str]] = {}
    for spec in feature_specs():
        by_source.setdefault(spec.source, []).append(spec.name)
    groups = {
        "entity facts only": by_source["entity"],
        "government (+ entity)": by_source["entity"] + by_source["government"],
        "PBOC (+ entity)": by_source["entity"] + by_source["pboc"],
        "private lending (+ entity)": by_source["entity"] + by_source["private_lending"],
        "government only": by_source["government"],
        "PBOC only": by_source["pboc"],
        "private lending only": by_source["private_lending"],
        "three-in-one view": [s.name for s in feature_specs()],
    }
    rows = {name: fit_auc(train, test, columns) for name, columns in groups.items()}
    table = pd.DataFrame(rows).T.round(3)
    print(table.to_string())


if __name__ == "__main__":
    main()
