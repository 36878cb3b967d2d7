# ruff: noqa: N803  (scikit-learn names the feature matrix X)
"""Cross-fitting: champions fitted on complementary parts of a table, averaged.

Early stopping and calibration need entities the model did not learn from. Holding out a
fifth of a table for them wastes data — on a thousand applications, 200 rows that the
model never learns from and a calibration resting on some 50 defaults. Cross-fitting uses
every row for both: the rows are cut into ``n_parts`` stratified parts, and for each part
a champion (`models.champion.LightGBMChampion`) is fitted on the other parts and stopped
early on it. The model's log-odds is the average of the champions' log-odds, and every
row gets an *out-of-part* PD from the champion that did not see it (``oof_pd_``): an
honest score on which to fit the calibrator (`models.calibration.Calibrator`). Averaging
also smooths the noise of each champion's early-stopping point and row sampling.

Feature contributions stay exact: TreeSHAP is additive, so the contributions of the
average are the averages of the champions' contributions.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from models.champion import (
    LightGBMChampion,
    binary_target,
    check_integer,
    feature_frame,
)
from models.errors import ModelError, ParameterError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]


class CrossFittedChampion(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """The average of ``n_parts`` champions, each stopped early on the part it did not see.

    Parameters
    ----------
    estimator
        The champion to cross-fit (unfitted; cloned for every part). None: a
        `LightGBMChampion` with its defaults. Its ``early_stopping_rounds`` applies.
    n_parts
        Number of stratified parts (at least 2), reduced to the number of entities of the
        smaller class when there are fewer.
    random_state
        Seed of the assignment of rows to parts.

    Attributes
    ----------
    estimators_ : list of LightGBMChampion
        The fitted champions, one per part.
    oof_pd_ : ndarray
        Out-of-part PD of every row of ``X`` at fit: the PD given by the champion that was
        stopped on the row's part, i.e. that did not learn from it.
    classes_, feature_names_in_, feature_names_, n_features_in_
        As in `models.champion.LightGBMChampion`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"overdue_months": rng.integers(0, 12, 600),
    ...                   "capital": rng.normal(size=600)})
    >>> y = (rng.random(600) < 0.05 + 0.05 * X.overdue_months).astype(int)
    >>> model = CrossFittedChampion(LightGBMChampion(n_estimators=50, n_jobs=1), n_parts=3)
    >>> model = model.fit(X, y)
    >>> len(model.estimators_), model.oof_pd_.shape
    (3, (600,))
    >>> members = np.mean([m.decision_function(X) for m in model.estimators_], axis=0)
    >>> bool(np.allclose(model.decision_function(X), members))
    True
    """

    def __init__(
        self,
        estimator: LightGBMChampion | None = None,
        n_parts: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.n_parts = n_parts
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> Self:
        """Fit one champion per part on the other parts, stopping early on the part.

        Raises
        ------
        ParameterError
            ``n_parts`` or ``estimator`` is not allowed (the message says why).
        ModelError
            ``y`` is not binary with two classes, each with at least two entities.
        """
        n_parts = check_integer("n_parts", self.n_parts, 2)
        template = LightGBMChampion() if self.estimator is None else self.estimator
        if not isinstance(template, LightGBMChampion):
            raise ParameterError("estimator", "champion", "must be a LightGBMChampion or None")
        if self.random_state is not None:
            check_integer("random_state", self.random_state, 0)
        frame = feature_frame(self, X, reset=True)
        self.feature_names_: list[str] = list(frame.columns)
        self.classes_, target = binary_target(y)
        if len(target) != len(frame):
            raise ModelError("y", "same_length", f"X has {len(frame)} rows, y {len(target)}")
        smaller = int(np.bincount(target).min())
        if smaller < 2:
            raise ModelError("y", "two_per_class", "cross-fitting needs 2 entities of each class")
        parts = StratifiedKFold(min(n_parts, smaller), shuffle=True, random_state=self.random_state)
        self.estimators_: list[LightGBMChampion] = []
        self.oof_pd_ = np.empty(len(target), dtype=np.float64)
        for rest, part in parts.split(frame, target):
            champion = clone(template).fit(
                frame.iloc[rest], target[rest], eval_set=(frame.iloc[part], target[part])
            )
            self.oof_pd_[part] = champion.predict_proba(frame.iloc[part])[:, 1]
            self.estimators_.append(champion)
        trees = [m.best_iteration_ for m in self.estimators_]
        logger.info("cross-fitted %d champions: %s trees", len(trees), trees)
        return self

    def _frame(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "estimators_")
        return feature_frame(self, X, reset=False)

    def decision_function(self, X: Any) -> FloatArray:
        """Log-odds of default, the average of the champions' (before calibration)."""
        frame = self._frame(X)
        log_odds = [m.decision_function(frame) for m in self.estimators_]
        return np.asarray(np.mean(log_odds, axis=0), dtype=np.float64)

    def predict_proba(self, X: Any) -> FloatArray:
        """Probabilities of ``classes_``; column 1 is the (uncalibrated) PD."""
        pd_ = np.exp(-np.logaddexp(0.0, -self.decision_function(X)))  # 1 / (1 + e^-x)
        return np.column_stack([1.0 - pd_, pd_])

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The more likely label (PD above one half). Decisions use calibrated PDs instead."""
        raw = self.decision_function(X)
        return np.asarray(self.classes_[(raw > 0).astype(int)])

    def contributions(self, X: Any) -> pd.DataFrame:
        """Exact TreeSHAP contributions to the log-odds: the champions' averaged."""
        frame = self._frame(X)
        parts = [m.contributions(frame) for m in self.estimators_]
        return sum(parts[1:], parts[0]) / len(parts)
