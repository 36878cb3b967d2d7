"""The generic pipeline's parts: the champion sized for the table, calibration on every row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.crossfit import CrossFittedChampion
from models.errors import ModelError
from models.metrics import roc_auc
from models.train import _fit_table_pair, prepare_table, read_table, table_champion_params

DATA = Path(__file__).resolve().parents[1] / "data"


def test_champion_grows_with_the_table_within_bounds() -> None:
    sizes = [100, 640, 2_000, 6_700, 19_200, 1_000_000]
    params = [table_champion_params(n, 0.2) for n in sizes]
    for key in ("min_child_samples", "num_leaves", "max_depth"):
        values = [p[key] for p in params]
        assert values == sorted(values), key
    assert {p["min_child_samples"] for p in params} <= set(range(10, 51))
    assert {p["num_leaves"] for p in params} <= set(range(4, 32))
    for p in params:
        assert 2 ** (p["max_depth"] - 1) >= p["num_leaves"]  # room for unbalanced trees
        # the L2 penalty weighs as much as the Hessian of the smallest leaf
        assert p["reg_lambda"] == pytest.approx(p["min_child_samples"] * 0.2 * 0.8, abs=0.01)


def test_sizing_needs_rows_with_goods_and_bads() -> None:
    with pytest.raises(ModelError) as caught:
        table_champion_params(640, 0.0)
    assert caught.value.field == "bad_rate"
    with pytest.raises(ModelError) as caught:
        table_champion_params(0, 0.3)
    assert caught.value.field == "n_rows"


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, np.ndarray[Any, Any], list[str]]:
    frame = read_table(DATA / "german_credit.csv")
    return prepare_table(frame, "creditability", "bad")


@pytest.fixture(scope="module")
def fold(german: tuple[pd.DataFrame, np.ndarray[Any, Any], list[str]]) -> Any:
    x, y, categorical = german
    train, test = np.arange(800), np.arange(800, 1_000)
    models = _fit_table_pair(x.iloc[train], y[train], categorical=categorical)
    return models, x.iloc[test], y[test]


def test_calibration_keeps_each_models_ranking(fold: Any) -> None:
    models, x_test, y_test = fold
    for model in models.values():
        raw = model.base_model.predict_proba(x_test)[:, 1]
        calibrated = model.predict_proba(x_test)[:, 1]
        assert roc_auc(y_test, calibrated) == pytest.approx(roc_auc(y_test, raw), abs=2e-3)
        assert abs(calibrated.mean() - y_test.mean()) < 0.05


def test_champion_is_cross_fitted_and_scorecard_drops_noise(fold: Any) -> None:
    models, _, _ = fold
    champion = models["champion"].base_model
    assert isinstance(champion, CrossFittedChampion)
    assert len(champion.estimators_) == 5
    assert champion.estimators_[0].min_child_samples == 12  # 640 rows per booster
    ivs = models["challenger"].base_model.iv_table().set_index("variable")
    dropped = ivs[~ivs["selected"]]
    assert len(dropped) > 0
    assert ((dropped["iv"] < 0.02) & (dropped["p_value"] > 0.001)).all()
    assert ivs.loc["status_of_existing_checking_account", "selected"]
