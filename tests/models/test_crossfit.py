"""The cross-fitted champion: scikit-learn conventions, honest out-of-part PDs, exact SHAP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.champion import BASE_VALUE, LightGBMChampion
from models.crossfit import CrossFittedChampion
from models.errors import ModelError, ParameterError
from models.metrics import roc_auc


# one thread (the machine is shared with other work) and leaves of 5 rows: each booster
# of the checks learns from half of a few hundred rows
@parametrize_with_checks(  # type: ignore[untyped-decorator]
    [CrossFittedChampion(LightGBMChampion(min_child_samples=5, n_jobs=1), n_parts=2)]
)
def test_scikit_learn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    check(estimator)


def credit(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "overdue_months": rng.poisson(2.0, n).astype(float),
            "capital": rng.normal(size=n),
            "industry": rng.choice(["footwear", "valves", "eyewear"], n),
        }
    )
    log_odds = -2.0 + 0.4 * x["overdue_months"] - 0.8 * x["capital"]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-log_odds))).astype(int)
    return x, y.to_numpy()


@pytest.fixture(scope="module")
def fitted() -> tuple[CrossFittedChampion, pd.DataFrame, np.ndarray[Any, Any]]:
    x, y = credit(1_500, seed=0)
    model = CrossFittedChampion(LightGBMChampion(n_estimators=200, n_jobs=1), n_parts=4)
    return model.fit(x, y), x, y


def test_out_of_part_pd_comes_from_the_champion_that_did_not_see_the_row(
    fitted: tuple[CrossFittedChampion, pd.DataFrame, np.ndarray[Any, Any]],
) -> None:
    model, x, y = fitted
    parts = StratifiedKFold(4, shuffle=True, random_state=0).split(x, y)
    for champion, (_, part) in zip(model.estimators_, parts, strict=True):
        np.testing.assert_allclose(model.oof_pd_[part], champion.predict_proba(x.iloc[part])[:, 1])
    # out of part, the PDs rank about as well as on rows never seen at all
    new_x, new_y = credit(3_000, seed=1)
    fresh = roc_auc(new_y, model.predict_proba(new_x)[:, 1])
    assert abs(roc_auc(y, model.oof_pd_) - fresh) < 0.05


def test_log_odds_and_contributions_are_the_champions_averaged(
    fitted: tuple[CrossFittedChampion, pd.DataFrame, np.ndarray[Any, Any]],
) -> None:
    model, x, _ = fitted
    rows = x.iloc[:50]
    members = np.mean([m.decision_function(rows) for m in model.estimators_], axis=0)
    np.testing.assert_allclose(model.decision_function(rows), members)
    contributions = model.contributions(rows)
    assert list(contributions.columns) == [*model.feature_names_, BASE_VALUE]
    np.testing.assert_allclose(contributions.sum(axis=1), model.decision_function(rows))


def test_parts_are_reduced_to_the_smaller_class_and_checked() -> None:
    x, y = credit(200, seed=2)
    y = np.zeros_like(y)
    y[:3] = 1
    model = CrossFittedChampion(LightGBMChampion(n_estimators=20, n_jobs=1)).fit(x, y)
    assert len(model.estimators_) == 3
    y[1:3] = 0
    with pytest.raises(ModelError) as caught:
        CrossFittedChampion().fit(x, y)
    assert caught.value.field == "y"
    for params, field in [({"n_parts": 1}, "n_parts"), ({"estimator": "lgbm"}, "estimator")]:
        with pytest.raises(ParameterError) as refused:
            CrossFittedChampion(**params).fit(x, y)  # type: ignore[arg-type]
        assert refused.value.field == field
