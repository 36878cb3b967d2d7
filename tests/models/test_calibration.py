"""The calibrator keeps the model's ranking: centred isotonic regression has no steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from models.calibration import Calibrator, _log_odds
from models.metrics import brier, roc_auc


def overconfident(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Outcomes and a score that ranks well but overstates every PD (sqrt of the truth)."""
    rng = np.random.default_rng(seed)
    true_pd = rng.beta(1.0, 6.0, n)
    y = (rng.random(n) < true_pd).astype(int)
    return np.sqrt(true_pd), y


@pytest.mark.parametrize("n", [200, 3_000])
def test_isotonic_map_passes_through_the_centres_of_its_steps(n: int) -> None:
    score, y = overconfident(n, seed=n)
    fitted = Calibrator(method="isotonic").fit(score, y).estimator_
    steps = IsotonicRegression(y_min=0.0, y_max=1.0).fit(score, y).predict(score)
    rates = np.unique(steps)
    np.testing.assert_allclose(fitted.y_thresholds_, rates)
    centres = [score[steps == rate].mean() for rate in rates]
    np.testing.assert_allclose(fitted.X_thresholds_, centres)
    assert np.all(np.diff(fitted.X_thresholds_) > 0)
    assert np.all(np.diff(fitted.y_thresholds_) > 0)


@pytest.mark.parametrize("method", ["auto", "isotonic", "platt"])
def test_calibration_keeps_the_ranking_inside_the_validation_range(method: str) -> None:
    """Strictly increasing wherever the PD floor and ceiling do not cut it."""
    score, y = overconfident(400, seed=1)
    calibrator = Calibrator(method=method).fit(score, y)
    fitted = calibrator.estimator_
    low, high = (
        (fitted.X_thresholds_[0], fitted.X_thresholds_[-1])
        if calibrator.method_ == "isotonic"
        else (score.min(), score.max())
    )
    grid = np.linspace(low, high, 2_001)
    calibrated = calibrator.predict(grid)
    floor = calibrator.pd_floor
    uncut = (calibrated[:-1] > floor) & (calibrated[1:] < 1 - floor)
    assert uncut.mean() > 0.9
    assert np.all(np.diff(calibrated)[uncut] > 0)
    test_score, test_y = overconfident(2_000, seed=2)
    inside = (test_score > low) & (test_score < high)
    inside &= calibrator.predict(test_score) > floor
    assert roc_auc(test_y[inside], calibrator.predict(test_score[inside])) == pytest.approx(
        roc_auc(test_y[inside], test_score[inside]), abs=1e-12
    )


def test_centred_isotonic_is_better_calibrated_than_its_steps() -> None:
    """Over 20 small validation samples, the interpolated map beats the steps on Brier."""
    test_score, test_y = overconfident(20_000, seed=99)
    gains = []
    for seed in range(20):
        score, y = overconfident(300, seed=seed)
        centred = Calibrator(method="isotonic").fit(score, y).predict(test_score)
        steps = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y)
        stepped = np.clip(steps.predict(test_score), 0.0003, 0.9997)
        gains.append(brier(test_y, stepped) - brier(test_y, centred))
    assert np.mean(gains) > 0


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_the_served_map_equals_scikit_learns_own_prediction(method: str) -> None:
    # `_apply_map` skips scikit-learn's input checks for speed: the values must not move
    rng = np.random.default_rng(3)
    probs = rng.beta(1, 20, 4_000)
    labels = rng.binomial(1, probs)
    calibrator = Calibrator(method=method).fit(probs, labels)
    fitted = calibrator.estimator_
    new = rng.uniform(0, 1, 1_000)
    if method == "isotonic":
        expected = fitted.predict(new)
    else:
        expected = fitted.predict_proba(_log_odds(new))[:, 1]
    floor = float(calibrator.pd_floor)
    np.testing.assert_array_equal(calibrator.predict(new), np.clip(expected, floor, 1 - floor))
