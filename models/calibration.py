"""Calibration: turn a model's ranking score into a probability of default one can price on.

A model can rank entities well and still be wrong about levels: boosted trees trained on a
resampled or shifted population, or a scorecard fitted years ago, may say 8 % where 3 % of
such entities default. Calibration maps the model's PD to the default rate observed on a
*validation* sample that the model did not see (for the out-of-time design: the snapshot
after the training ones).

Two classic maps compete:

- **Platt scaling**: a logistic regression on the model's log-odds, ``ln(p / (1 − p))``.
  Two parameters, smooth, keeps the ranking and works on small samples.
- **Isotonic regression**: the best non-decreasing step function, fits any monotone
  distortion but needs more defaults. Its steps would put every entity of a step on the
  same PD and so throw away part of the model's ranking (ROC AUC falls, grade cut-offs
  split ties arbitrarily). We use it *centred* (Oron & Flournoy, 2017): each step is
  replaced by one point, its mean score and its default rate, and the map interpolates
  linearly between these points. It is strictly increasing between the centres of the
  lowest and the highest step (flat only beyond them), so calibration moves PD levels and
  keeps the model's order; on held-out data (``bench/real_data.py``) its Brier score is
  also lower than that of the steps.

`Calibrator` chooses between them by the cross-validated Brier score *on the validation
sample itself* (stratified folds, so every fold has defaults); Platt wins ties, being the
simpler map. `CalibratedModel` joins a fitted model and its calibrator into the single
object that is logged to MLflow and served.
"""

# ruff: noqa: N803  (scikit-learn names the feature matrix X)

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from models.champion import check_integer, check_real
from models.errors import ModelError, ParameterError
from models.metrics import check_outcomes, check_probabilities

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
METHODS = ("auto", "isotonic", "platt")


class Calibrator(BaseEstimator):  # type: ignore[misc]
    """Map uncalibrated PDs to calibrated ones, by isotonic regression or Platt scaling.

    Parameters
    ----------
    method
        ``"auto"`` (choose by cross-validated Brier score), ``"isotonic"`` or ``"platt"``.
    cv
        Number of stratified folds used to compare the methods (reduced to the number of
        defaults when there are fewer; needs at least two defaults and two goods).
    pd_floor
        Calibrated PDs are kept in ``[pd_floor, 1 − pd_floor]`` so that log-odds and scores
        stay finite (an isotonic step can otherwise reach exactly 0). Regulators use floors
        of the same order for corporate PDs (Basel: 0.03 %, later 0.05 %).
    random_state
        Seed of the fold assignment.

    Attributes
    ----------
    method_ : str
        The method used: ``"isotonic"`` or ``"platt"``.
    scores_ : dict of str to float
        Cross-validated Brier score of each candidate on the validation sample (empty when
        the sample is too small to cross-validate and ``method`` was fixed).
    estimator_ : IsotonicRegression or LogisticRegression
        The fitted map. The isotonic one is centred: its ``X_thresholds_`` are the mean
        scores of the steps and its ``y_thresholds_`` their default rates.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> true_pd = rng.uniform(0.01, 0.3, 4_000)
    >>> y = (rng.random(4_000) < true_pd).astype(int)
    >>> overconfident = np.sqrt(true_pd)  # a model that says 17 % where 3 % default
    >>> calibrator = Calibrator().fit(overconfident, y)
    >>> calibrator.method_ in ("isotonic", "platt"), sorted(calibrator.scores_)
    (True, ['isotonic', 'platt'])
    >>> bool(abs(calibrator.predict(overconfident).mean() - y.mean()) < 0.01)
    True
    """

    def __init__(
        self,
        method: str = "auto",
        cv: int = 5,
        pd_floor: float = 0.0003,
        random_state: int | None = 0,
    ) -> None:
        self.method = method
        self.cv = cv
        self.pd_floor = pd_floor
        self.random_state = random_state

    def fit(self, scores: Any, y: Any) -> Self:
        """Compare the methods on ``(scores, y)`` by cross-validation, then fit the chosen one.

        Parameters
        ----------
        scores
            Uncalibrated PDs of the validation sample, in [0, 1].
        y
            Outcomes of the validation sample: 1 = default, 0 = good.
        """
        if self.method not in METHODS:
            raise ParameterError("method", "choice", f"allowed: {METHODS}; got {self.method!r}")
        cv = check_integer("cv", self.cv, 2)
        check_real("pd_floor", self.pd_floor, 0, 0.5)
        if self.random_state is not None:
            check_integer("random_state", self.random_state, 0)
        labels, probs = check_outcomes(y, scores, pd_field="scores")
        minority = int(min(labels.sum(), len(labels) - labels.sum()))
        if minority == 0:
            raise ModelError("y", "both_classes", "calibration needs defaults and goods")

        self.scores_: dict[str, float] = {}
        if minority >= 2:
            self.scores_ = self._cross_validate(probs, labels, min(cv, minority))
        elif self.method == "auto":
            raise ModelError(
                "y", "enough_defaults", "choosing a method needs at least 2 defaults and 2 goods"
            )
        if self.method == "auto":
            best = min(self.scores_.values())
            self.method_ = "platt" if self.scores_["platt"] <= best else "isotonic"
        else:
            self.method_ = self.method
        self.estimator_ = _fit_map(self.method_, probs, labels)
        logger.info("calibration: %s (CV Brier %s)", self.method_, self.scores_)
        return self

    def _cross_validate(self, probs: FloatArray, labels: Any, n_splits: int) -> dict[str, float]:
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        squared: dict[str, list[FloatArray]] = {"isotonic": [], "platt": []}
        for train, test in folds.split(probs, labels):
            for method, errors in squared.items():
                fitted = _fit_map(method, probs[train], labels[train])
                predicted = _apply_map(fitted, probs[test], float(self.pd_floor))
                errors.append((predicted - labels[test]) ** 2)
        return {method: float(np.concatenate(e).mean()) for method, e in squared.items()}

    def predict(self, scores: Any) -> FloatArray:
        """Calibrated PDs of uncalibrated ones (any 1-D array of values in [0, 1])."""
        check_is_fitted(self, "estimator_")
        probs = check_probabilities(scores, "scores")
        return _apply_map(self.estimator_, probs, float(self.pd_floor))


def _log_odds(probs: FloatArray) -> FloatArray:
    eps = 1e-12
    clipped = np.clip(probs, eps, 1.0 - eps)
    return (np.log(clipped) - np.log1p(-clipped)).reshape(-1, 1)


def _fit_map(method: str, probs: FloatArray, labels: Any) -> Any:
    if method == "isotonic":
        return _centred_isotonic(probs, labels)
    return LogisticRegression(C=np.inf).fit(_log_odds(probs), labels)


def _centred_isotonic(probs: FloatArray, labels: Any) -> IsotonicRegression:
    """Isotonic regression through the centres of its steps (centred isotonic regression).

    The steps of the pool-adjacent-violators fit become points (mean score of the step,
    default rate of the step); their default rates are strictly increasing and so are their
    mean scores, so an `IsotonicRegression` fitted on them passes through every point and
    interpolates linearly between them. Beyond the outer points it is flat (``clip``).
    """
    steps = IsotonicRegression(y_min=0.0, y_max=1.0).fit(probs, labels)
    rates, step = np.unique(steps.predict(probs), return_inverse=True)
    centres = np.bincount(step, weights=probs) / np.bincount(step)
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(centres, rates)


def _apply_map(fitted: Any, probs: FloatArray, floor: float) -> FloatArray:
    # the fitted maps' own arithmetic, without scikit-learn's input checks: a served request
    # calibrates one PD, and the checks cost more than the map (same values, tested)
    if isinstance(fitted, IsotonicRegression):
        calibrated = fitted.f_(np.clip(probs, fitted.X_min_, fitted.X_max_))
    else:
        decision = _log_odds(probs) @ fitted.coef_.T + fitted.intercept_
        calibrated = expit(decision).reshape(-1)
    return np.clip(np.asarray(calibrated, dtype=np.float64), floor, 1.0 - floor)


class CalibratedModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A fitted PD model and its fitted calibrator: the whole pipeline, logged and served.

    Nothing is fitted here: build it from parts fitted elsewhere (see `calibrate`). It
    pickles with its parts and exposes the base model's ``feature_names_in_``, so that
    MLflow can infer the input signature.

    Parameters
    ----------
    base_model
        A fitted classifier with ``predict_proba`` (the champion or the scorecard).
    calibrator
        A fitted `Calibrator` for that model's PDs.
    """

    def __init__(self, base_model: Any, calibrator: Calibrator) -> None:
        self.base_model = base_model
        self.calibrator = calibrator

    def __sklearn_is_fitted__(self) -> bool:
        check_is_fitted(self.base_model)
        check_is_fitted(self.calibrator, "estimator_")
        return True

    @property
    def classes_(self) -> npt.NDArray[Any]:
        """The base model's labels; ``classes_[1]`` is the default event."""
        return np.asarray(self.base_model.classes_)

    @property
    def feature_names_in_(self) -> npt.NDArray[Any]:
        """The base model's input columns (absent if it was fitted on an array)."""
        return np.asarray(self.base_model.feature_names_in_)

    @property
    def n_features_in_(self) -> int:
        """Number of input columns of the base model."""
        return int(self.base_model.n_features_in_)

    def predict_proba(self, X: Any) -> FloatArray:
        """Calibrated probabilities of ``classes_``; column 1 is the PD."""
        self.__sklearn_is_fitted__()  # no fit of its own: check_is_fitted(self) wants one
        pd_ = self.calibrator.predict(self.base_model.predict_proba(X)[:, 1])
        return np.column_stack([1.0 - pd_, pd_])

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The more likely label by calibrated PD (above one half)."""
        pd_ = self.predict_proba(X)[:, 1]
        return np.asarray(self.classes_[(pd_ > 0.5).astype(int)])


def calibrate(
    base_model: Any, X_valid: Any, y_valid: Any, *, method: str = "auto"
) -> CalibratedModel:
    """Fit a `Calibrator` on a fitted model's PDs for a validation sample and join them.

    ``y_valid`` uses the base model's labels; ``classes_[1]`` counts as default.
    """
    check_is_fitted(base_model)
    outcomes = (np.asarray(y_valid) == base_model.classes_[1]).astype(int)
    calibrator = Calibrator(method=method).fit(base_model.predict_proba(X_valid)[:, 1], outcomes)
    return CalibratedModel(base_model, calibrator)
