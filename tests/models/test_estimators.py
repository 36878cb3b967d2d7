"""The champion, the challenger and the calibrator: API conventions and credit properties."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.calibration import CalibratedModel, Calibrator, calibrate
from models.champion import LightGBMChampion
from models.errors import ModelError, ParameterError
from models.metrics import calibration_error, roc_auc
from models.scorecard import WOEScorecard

DATA = Path(__file__).parents[1] / "data"
INDUSTRIES = ["footwear", "valves", "eyewear", "electrical"]
DIRECTIONS = {"overdue_months": 1, "capital": -1, "noise": 0}
SPECIAL_CODES = [-7.0, -8.0]


# ---- scikit-learn's estimator checks


# The champion runs on one thread in the tests: they share the machine with other work, and
# OpenMP threads spin-wait under contention (a 1 s fit can take 30 s). No other change.
@parametrize_with_checks([LightGBMChampion(n_jobs=1), WOEScorecard()])  # type: ignore[untyped-decorator]
def test_scikit_learn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    """Every scikit-learn check passes with the shipped defaults; none is expected to fail."""
    check(estimator)


# ---- data


def synthetic_credit(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """A clear monotone signal (overdue months up, capital down) plus a U-shaped noise term."""
    rng = np.random.default_rng(seed)
    overdue = rng.poisson(2.0, n).astype(float)
    capital = rng.normal(0.0, 1.0, n)
    noise = rng.normal(0.0, 1.0, n)
    industry = rng.choice(INDUSTRIES, n)
    log_odds = -2.5 + 0.35 * overdue - 0.9 * capital + 0.6 * (noise**2 - 1.0)
    log_odds += np.where(industry == "valves", 0.7, 0.0)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-log_odds))).astype(int)
    x = pd.DataFrame(
        {"overdue_months": overdue, "capital": capital, "noise": noise, "industry": industry}
    )
    x.loc[rng.random(n) < 0.05, "capital"] = np.nan
    return x, y


def german_credit() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    frame = pd.read_csv(DATA / "german_credit.csv")
    y = (frame.pop("creditability") == "bad").astype(int).to_numpy()
    return frame, y


@pytest.fixture(scope="module")
def credit() -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    return synthetic_credit(3_000, seed=1)


@pytest.fixture(scope="module")
def champion(credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]) -> LightGBMChampion:
    x, y = credit
    valid_x, valid_y = synthetic_credit(1_000, seed=2)
    model = LightGBMChampion(monotone=DIRECTIONS, n_estimators=300, n_jobs=1)
    return model.fit(x, y, eval_set=(valid_x, valid_y))


@pytest.fixture(scope="module")
def coded_credit(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]],
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """The synthetic data with "no record" special codes in ``capital`` (all risky)."""
    x, y = credit
    x = x.copy()
    rows = np.flatnonzero(y == 1)[:60]
    x.loc[rows[:40], "capital"] = -7.0
    x.loc[rows[40:], "capital"] = -8.0
    return x, y


@pytest.fixture(scope="module")
def scorecard(coded_credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]) -> WOEScorecard:
    x, y = coded_credit
    return WOEScorecard(monotone=DIRECTIONS, special_codes=SPECIAL_CODES).fit(x, y)


# ---- champion


def test_champion_records_constraints_and_categories(champion: LightGBMChampion) -> None:
    assert champion.feature_names_ == ["overdue_months", "capital", "noise", "industry"]
    assert list(champion.feature_names_in_) == champion.feature_names_
    assert champion.monotone_constraints_ == [1, -1, 0, 0]
    assert list(champion.categories_) == ["industry"]
    assert sorted(champion.categories_["industry"]) == sorted(INDUSTRIES)
    assert champion.booster_.num_trees() == champion.best_iteration_


@settings(max_examples=80, deadline=None)
@given(
    feature=st.sampled_from(["overdue_months", "capital"]),
    overdue=st.floats(0.0, 15.0),
    capital=st.floats(-4.0, 4.0),
    noise=st.floats(-3.0, 3.0) | st.just(np.nan),
    industry=st.sampled_from([*INDUSTRIES, "unseen"]),
    step=st.floats(0.001, 10.0),
)
def test_moving_a_feature_in_its_bad_direction_never_lowers_the_pd(
    champion: LightGBMChampion,
    feature: str,
    overdue: float,
    capital: float,
    noise: float,
    industry: str,
    step: float,
) -> None:
    row: dict[str, Any] = {
        "overdue_months": overdue,
        "capital": capital,
        "noise": noise,
        "industry": industry,
    }
    worse = dict(row)
    worse[feature] += DIRECTIONS[feature] * step  # +1: up is bad; -1: down is bad
    pd_ = champion.predict_proba(pd.DataFrame([row, worse]))[:, 1]
    assert pd_[1] >= pd_[0] - 1e-12


def test_monotone_features_carry_signal_and_noise_is_used(champion: LightGBMChampion) -> None:
    """The constraints did not flatten the model: every informative feature is used."""
    used = champion.booster_.feature_importance(importance_type="split")
    assert dict(zip(champion.feature_names_, used > 0, strict=True)) == {
        "overdue_months": True,
        "capital": True,
        "noise": True,
        "industry": True,
    }


def test_contributions_add_up_to_the_log_odds(
    champion: LightGBMChampion, credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    x = credit[0].iloc[:200]
    contributions = champion.contributions(x)
    assert list(contributions.columns) == [*champion.feature_names_, "base_value"]
    assert contributions.index.equals(x.index)
    np.testing.assert_allclose(
        contributions.sum(axis=1), champion.decision_function(x), rtol=0, atol=1e-6
    )
    assert contributions["base_value"].nunique() == 1
    pd.testing.assert_frame_equal(contributions, champion.contributions(x))


def test_contributions_on_an_array_use_generic_names() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(size=300) > 0).astype(int)
    model = LightGBMChampion(n_estimators=30, monotone={"x0": 1}, n_jobs=1).fit(x, y)
    assert not hasattr(model, "feature_names_in_")
    contributions = model.contributions(x)
    assert list(contributions.columns) == ["x0", "x1", "x2", "base_value"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.decision_function(x), atol=1e-6)


def test_unseen_category_is_treated_as_missing(champion: LightGBMChampion) -> None:
    base = {"overdue_months": 3.0, "capital": 0.2, "noise": 0.1}
    rows = pd.DataFrame([base | {"industry": "never seen"}, base | {"industry": None}])
    pd_ = champion.predict_proba(rows)[:, 1]
    assert np.isfinite(pd_).all()
    assert pd_[0] == pd_[1]
    numeric_nan = pd.DataFrame([base | {"capital": np.nan, "industry": "valves"}])
    assert np.isfinite(champion.predict_proba(numeric_nan)).all()


@pytest.mark.parametrize(
    ("value", "rule"), [(np.inf, "finite"), (-np.inf, "finite"), ("3 个月", "numeric")]
)
def test_bad_numbers_at_prediction_name_the_column(
    champion: LightGBMChampion, value: Any, rule: str
) -> None:
    base = {"overdue_months": 3.0, "capital": 0.2, "noise": 0.1, "industry": "valves"}
    rows = pd.DataFrame([base, base | {"overdue_months": value}])
    with pytest.raises(ModelError) as caught:
        champion.predict_proba(rows)
    assert (caught.value.field, caught.value.rule) == ("overdue_months", rule)


def test_categorical_parameter_codes_integer_columns(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]],
) -> None:
    x, y = credit
    x = x.assign(region=np.arange(len(x)) % 7)
    model = LightGBMChampion(n_estimators=20, categorical=["region"], n_jobs=1).fit(x, y)
    assert set(model.categories_) == {"industry", "region"}
    unseen = x.iloc[:5].assign(region=99)
    np.testing.assert_array_equal(
        model.predict_proba(unseen), model.predict_proba(x.iloc[:5].assign(region=np.nan))
    )


def test_early_stopping_stops_on_noise() -> None:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(2_000, 4)), columns=list("abcd"))
    y = rng.integers(0, 2, 2_000)
    model = LightGBMChampion(n_estimators=600, early_stopping_rounds=30, n_jobs=1)
    model.fit(x.iloc[:1_500], y[:1_500], eval_set=(x.iloc[1_500:], y[1_500:]))
    assert model.best_iteration_ < 200
    assert model.booster_.num_trees() == model.best_iteration_


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"n_estimators": 0}, "n_estimators", "integer"),
        ({"learning_rate": 0.0}, "learning_rate", "range"),
        ({"subsample": 1.5}, "subsample", "range"),
        ({"max_depth": 2.5}, "max_depth", "integer"),
        ({"early_stopping_rounds": 0}, "early_stopping_rounds", "integer"),
        ({"monotone": {"overdue_months": 2}}, "monotone", "direction"),
        ({"monotone": {"turnover": 1}}, "monotone", "known_feature"),
        ({"monotone": {"industry": 1}}, "monotone", "categorical_unconstrained"),
        ({"categorical": ["turnover"]}, "categorical", "known_feature"),
    ],
)
def test_champion_parameter_errors_name_the_parameter(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]],
    params: dict[str, Any],
    field: str,
    rule: str,
) -> None:
    x, y = credit
    with pytest.raises(ParameterError) as caught:
        LightGBMChampion(**params).fit(x, y)
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert field in str(caught.value)


def test_champion_refuses_a_single_class_and_multiclass(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]],
) -> None:
    x, y = credit
    with pytest.raises(ModelError, match="one class") as caught:
        LightGBMChampion().fit(x, np.zeros_like(y))
    assert caught.value.field == "y"
    with pytest.raises(ModelError, match="Only binary"):
        LightGBMChampion().fit(x, np.arange(len(y)) % 3)


# ---- scorecard


def test_points_table_covers_every_variable_and_bin(scorecard: WOEScorecard) -> None:
    table = scorecard.points_table()
    assert list(table.columns) == ["variable", "bin", "count", "event_rate", "woe", "iv", "points"]
    assert set(table["variable"]) == set(scorecard.variables_)
    assert table["points"].notna().all()
    for variable in scorecard.variables_:
        bins = scorecard.bins_[scorecard.bins_["variable"] == variable]
        assert (table["variable"] == variable).sum() == len(bins)
    ivs = scorecard.iv_table()
    assert ivs["iv"].is_monotonic_decreasing
    assert ivs.set_index("variable").loc["overdue_months", "iv"] > 0.1


def test_score_falls_as_the_pd_rises(
    scorecard: WOEScorecard, coded_credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    x = coded_credit[0]
    score = scorecard.to_score(x)
    pd_ = scorecard.predict_proba(x)[:, 1]
    assert np.all(np.diff(score[np.argsort(pd_, kind="stable")]) <= 1e-9)
    # score = offset + factor · ln(good:bad odds): 600 at 50:1, +20 each time the odds double
    np.testing.assert_allclose(score, 600 + 20 / np.log(2) * np.log((1 - pd_) / pd_ / 50))


def test_row_points_come_from_the_points_table(
    scorecard: WOEScorecard, coded_credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    x = coded_credit[0].iloc[:300]
    points = scorecard.points(x)
    np.testing.assert_allclose(points.sum(axis=1), scorecard.to_score(x))
    table = scorecard.points_table()
    for variable in points.columns:
        allowed = table.loc[table["variable"] == variable, "points"].to_numpy()
        distance = np.abs(points[variable].to_numpy()[:, None] - allowed[None, :]).min(axis=1)
        assert distance.max() < 1e-9


def test_special_codes_get_their_own_bins(
    scorecard: WOEScorecard, coded_credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    x = coded_credit[0]
    table = scorecard.points_table().set_index(["variable", "bin"])
    for code in (-7, -8):
        row = table.loc[("capital", f"special {code}")]
        assert row["count"] == (x["capital"] == code).sum()
        assert row["event_rate"] == 1.0  # pure bads: a finite, strongly negative WoE
        assert row["woe"] < -1.0
    missing = table.loc[("capital", "Missing")]
    assert missing["count"] == x["capital"].isna().sum()
    regular = table.loc["capital"].drop(["special -7", "special -8", "Missing"])
    assert regular["count"].sum() == x["capital"].notna().sum() - 60
    assert regular["event_rate"].is_monotonic_decreasing  # direction -1 for capital


def test_scorecard_unseen_category_is_missing(
    scorecard: WOEScorecard, coded_credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    rows = coded_credit[0].iloc[:3].copy()
    unseen = scorecard.to_score(rows.assign(industry="never seen"))
    missing = scorecard.to_score(rows.assign(industry=None))
    np.testing.assert_array_equal(unseen, missing)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pdo": -20.0}, "pdo"),
        ({"odds": 0.0}, "odds"),
        ({"min_bin_size": 0.7}, "min_bin_size"),
        ({"max_n_bins": 1}, "max_n_bins"),
        ({"special_codes": "-7"}, "special_codes"),
        ({"selection_iv_min": -1.0}, "selection_iv_min"),
        ({"selection_max_pvalue": 1.5}, "selection_max_pvalue"),
        ({"C": 0.0}, "C"),
        ({"monotone": {"capital": 3}}, "monotone"),
    ],
)
def test_scorecard_parameter_errors_name_the_parameter(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]], params: dict[str, Any], field: str
) -> None:
    x, y = credit
    with pytest.raises(ParameterError) as caught:
        WOEScorecard(**params).fit(x, y)
    assert caught.value.field == field


def test_iv_threshold_drops_weak_features(
    credit: tuple[pd.DataFrame, np.ndarray[Any, Any]],
) -> None:
    x, y = credit
    card = WOEScorecard(selection_iv_min=0.1).fit(x, y)
    assert "overdue_months" in card.variables_
    assert set(card.iv_table().query("not selected")["variable"]) == set(x) - set(card.variables_)
    with pytest.raises(ModelError) as caught:
        WOEScorecard(selection_iv_min=50.0).fit(x, y)
    assert caught.value.field == "selection_iv_min"


def test_significance_keeps_a_weak_real_feature_of_a_large_sample() -> None:
    """IV 0.008 on 20,000 rows is a real signal (p < 0.001); the noise is not (p > 0.001)."""
    rng = np.random.default_rng(3)
    n = 20_000
    x = pd.DataFrame({"overdue_months": rng.poisson(2.0, n).astype(float),
                      "weak": rng.normal(size=n), "noise": rng.normal(size=n)})  # fmt: skip
    log_odds = -2.0 + 0.5 * x["overdue_months"] + 0.08 * x["weak"]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-log_odds))).astype(int)
    by_iv = WOEScorecard(selection_iv_min=0.02).fit(x, y)
    assert by_iv.variables_ == ["overdue_months"]
    card = WOEScorecard(selection_iv_min=0.02, selection_max_pvalue=0.001).fit(x, y)
    assert card.variables_ == ["overdue_months", "weak"]
    table = card.iv_table().set_index("variable")
    assert table.loc["weak", "iv"] < 0.02 < table.loc["overdue_months", "iv"]
    assert table.loc["weak", "p_value"] < 0.001 < table.loc["noise", "p_value"]
    assert card.p_values_ == table["p_value"].to_dict()


# ---- real data


@pytest.mark.parametrize(
    "make",
    [partial(LightGBMChampion, n_jobs=1), WOEScorecard],
    ids=["champion", "scorecard"],
)
def test_five_fold_auc_on_german_credit(make: Callable[[], BaseEstimator]) -> None:
    x, y = german_credit()
    aucs = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        model = make().fit(x.iloc[train], y[train])
        aucs.append(roc_auc(y[test], model.predict_proba(x.iloc[test])[:, 1]))
    assert np.mean(aucs) >= 0.75, aucs


# ---- calibration


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Outcomes and a score that ranks well but overstates every PD (sqrt of the truth)."""
    rng = np.random.default_rng(seed)
    true_pd = rng.beta(1.0, 12.0, n)
    y = (rng.random(n) < true_pd).astype(int)
    return np.sqrt(true_pd), y


def test_calibrator_reduces_calibration_error_and_picks_a_method() -> None:
    score, y = miscalibrated(6_000, seed=0)
    calibrator = Calibrator().fit(score[:3_000], y[:3_000])
    assert calibrator.method_ in ("isotonic", "platt")
    assert set(calibrator.scores_) == {"isotonic", "platt"}
    assert calibrator.scores_[calibrator.method_] == min(calibrator.scores_.values())
    before = calibration_error(y[3_000:], score[3_000:])
    after = calibration_error(y[3_000:], calibrator.predict(score[3_000:]))
    assert after < before / 3


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrator_fixed_method_is_monotone(method: str) -> None:
    score, y = miscalibrated(2_000, seed=1)
    calibrator = Calibrator(method=method).fit(score, y)
    assert calibrator.method_ == method
    grid = np.linspace(0.0, 1.0, 101)
    calibrated = calibrator.predict(grid)
    assert np.all(np.diff(calibrated) >= 0)
    assert calibrated.min() >= calibrator.pd_floor
    assert calibrated.max() <= 1 - calibrator.pd_floor


def test_calibrator_validates_its_input() -> None:
    with pytest.raises(ParameterError) as refused:
        Calibrator(method="beta").fit([0.1, 0.2], [0, 1])
    assert refused.value.field == "method"
    with pytest.raises(ModelError) as caught:
        Calibrator().fit([0.1, 1.2, 0.3, 0.4], [0, 1, 0, 1])
    assert caught.value.field == "scores"
    with pytest.raises(ModelError) as caught:
        Calibrator().fit([0.1, 0.2, 0.3], [0, 0, 1])
    assert caught.value.field == "y"


def test_calibrated_model_pickles_and_round_trips(
    champion: LightGBMChampion, credit: tuple[pd.DataFrame, np.ndarray[Any, Any]]
) -> None:
    valid_x, valid_y = synthetic_credit(1_500, seed=4)
    model = calibrate(champion, valid_x, valid_y)
    assert isinstance(model, CalibratedModel)
    assert list(model.feature_names_in_) == champion.feature_names_
    assert model.n_features_in_ == 4
    x = credit[0].iloc[:100]
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(x), model.predict_proba(x))
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    pd_ = model.predict_proba(x)[:, 1]
    raw = champion.predict_proba(x)[:, 1]
    assert np.all(np.diff(pd_[np.argsort(raw, kind="stable")]) >= -1e-12)  # ranking kept
