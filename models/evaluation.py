"""Evaluation against the generator's ground truth — the only reader of ``truth/``.

On generated data the true 12-month default probability of every entity is known; its ROC
AUC against the record-derived labels is the ceiling any model can reach (the oracle AUC).
Nothing that builds features, fits or scores may read it: only this module, and only when
given the truth folder explicitly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from models.errors import ModelError
from models.metrics import roc_auc

TRUTH_FILE = "default_probability.parquet"
#: where the generator puts the truth, inside its delivery folder
TRUTH_FOLDER = "truth"


def load_truth(folder: Path) -> pd.DataFrame:
    """The truth table: ``uscc``, ``month`` (YYYY-MM), ``default_probability``."""
    path = folder / TRUTH_FILE
    if not path.exists():
        raise ModelError("truth", "not_found", f"no {TRUTH_FILE} in {folder}")
    return pd.read_parquet(path)


def oracle_auc(truth: pd.DataFrame, test: pd.DataFrame, target: str = "default_12m") -> float:
    """ROC AUC of the true probability at each row's as-of month against its label.

    Rows without a truth value (faulty extra registry rows of the generator) are left out.
    """
    month = pd.to_datetime(test["as_of"]).dt.strftime("%Y-%m")
    keyed = test.assign(month=month)[["uscc", "month", target]]
    joined = keyed.merge(truth, on=["uscc", "month"], how="inner")
    if joined.empty:
        raise ModelError("truth", "no_overlap", "the truth table has none of the test rows")
    return roc_auc(joined[target].to_numpy(), joined["default_probability"].to_numpy())
