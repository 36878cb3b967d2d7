# ruff: noqa: N803, N806  (scikit-learn names the feature matrix X)
"""The champion: gradient-boosted trees (LightGBM) with monotone constraints.

The champion predicts the probability of default (PD, 违约概率) of a market entity from the
three-in-one view. Three choices make it fit for credit decisions:

- **Monotone constraints** come from the feature metadata (`features.view.feature_specs`):
  a feature with direction ``+1`` (say, months with PBOC overdue payments) may only raise
  the PD, one with ``-1`` may only lower it. The model can then never tell an applicant that
  more overdue months would have helped, and reason codes stay believable.
- **Shallow trees** (``max_depth=4``, 15 leaves). Credit data rarely needs deep
  interactions, and exact TreeSHAP explanations (`LightGBMChampion.contributions`) cost time
  that grows with the square of the depth; shallow trees keep per-request reasons cheap.
- **Early stopping** on a validation set (``eval_set``) picks the number of trees.

Missing and unseen values
-------------------------
A missing numeric value (NaN, ``pd.NA``) is left to LightGBM, which learns at every split
which side missing values go to. Categorical columns (those listed in ``categorical`` and
every column of string, object or category dtype) are coded with the categories seen at
``fit``. A category not seen at fit is treated exactly like a missing value: this is the
*missing and unseen* policy, shared with the challenger scorecard (`models.scorecard`).

The helpers at the top of this module (`feature_frame`, `binary_target`,
`learn_categories`, `conform`) implement that input policy and are shared with the
scorecard so that both models read their input the same way.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from models.errors import ModelError, ParameterError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BASE_VALUE = "base_value"
#: below this many rows, predict on one thread
SMALL_BATCH = 1_000


# --------------------------------------------------------------------------------------
# Input policy shared by the champion and the scorecard


def feature_frame(estimator: Any, X: Any, *, reset: bool) -> pd.DataFrame:
    """``X`` as a DataFrame whose columns carry the estimator's feature names.

    Feature names and counts are checked the scikit-learn way (``validate_data``). A
    DataFrame keeps its dtypes; anything else must be numeric and becomes a float frame
    whose columns are named ``x0``, ``x1``, … (scikit-learn's convention).

    Parameters
    ----------
    estimator
        The estimator being fitted (``reset=True``) or applied (``reset=False``). When
        applied, it must have ``feature_names_``.
    X
        A DataFrame or a 2-D array-like.
    reset
        True at ``fit``: learn the names and count of the features.
    """
    if isinstance(X, pd.DataFrame):
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        if X.shape[0] == 0:
            raise ModelError("X", "non_empty", "X has no rows")
        data = X
    else:
        array = check_array(X, ensure_all_finite="allow-nan", input_name="X", estimator=estimator)
        validate_data(estimator, array, reset=reset, skip_check_array=True)
        data = pd.DataFrame(np.asarray(array, dtype=np.float64))
    if reset:
        names = getattr(estimator, "feature_names_in_", None)
        columns = [str(n) for n in names] if names is not None else None
        columns = columns or [f"x{i}" for i in range(data.shape[1])]
    else:
        columns = list(estimator.feature_names_)
    if BASE_VALUE in columns:
        raise ModelError("X", "reserved_name", f"no feature may be called {BASE_VALUE!r}")
    return data.set_axis(columns, axis=1)


def binary_target(y: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    """Check a binary target and return ``(classes, y01)``.

    The event (default) is ``classes[1]``, the larger label: encode defaults as ``1``.

    Raises
    ------
    ModelError
        ``y`` is not binary, or holds only one class (a PD model needs goods and bads).
    """
    if y is None:
        raise ModelError(
            "y", "required", "a PD model requires y to be passed, but the target y is None"
        )
    labels = column_or_1d(y, warn=True)
    check_classification_targets(labels)
    kind = type_of_target(labels, input_name="y", raise_unknown=True)
    if kind != "binary":
        raise ModelError(
            "y",
            "binary",
            f"Only binary classification is supported. The type of the target is {kind}.",
        )
    classes, y01 = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ModelError(
            "y", "two_classes", f"y holds one class only ({classes[0]!r}): needs goods and bads"
        )
    return classes, y01.astype(np.int64)


def categorical_columns(frame: pd.DataFrame, categorical: Sequence[str] | None) -> list[str]:
    """The listed columns plus every column of string, object or category dtype."""
    listed = set(check_columns("categorical", categorical or (), frame.columns))
    return [
        name
        for name in frame.columns
        if name in listed or not pd.api.types.is_numeric_dtype(frame[name])
    ]


def learn_categories(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, list[Any]]:
    """The categories seen at ``fit`` for each categorical column, sorted, missing excluded.

    Plain lists, so that the fitted model's readable twin (JSON) and any serializer can
    carry them.
    """
    return {name: pd.Categorical(frame[name].dropna()).categories.tolist() for name in columns}


def conform(frame: pd.DataFrame, categories: Mapping[str, list[Any]]) -> pd.DataFrame:
    """Numeric columns as float64 (infinity refused), categorical ones with fixed categories.

    A category not in ``categories`` becomes missing (the missing and unseen policy).
    """
    columns: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if name in categories:
            known = pd.Index(categories[name])
            columns[name] = pd.Categorical.from_codes(known.get_indexer(column), categories=known)
            continue
        try:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise ModelError(name, "numeric", f"expected numbers, got {column.dtype}") from error
        if np.isinf(values).any():
            raise ModelError(name, "finite", "infinite values are not allowed")
        columns[name] = values
    return pd.DataFrame(columns, index=frame.index)


# --------------------------------------------------------------------------------------
# Parameter checks shared by the estimators


def check_integer(name: str, value: object, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``, else a ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(name, "integer", f"must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_real(
    name: str, value: object, low: float, high: float = np.inf, *, low_open: bool = False
) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else np.nan  # type: ignore[arg-type]
    if not (low < number if low_open else low <= number) or not number <= high:
        raise ParameterError(name, "range", f"must be a number in {interval}; got {value!r}")
    return number


def check_columns(name: str, columns: Sequence[str], known: Sequence[str]) -> list[str]:
    """Every name in ``columns`` must be a feature of X."""
    if isinstance(columns, str):
        raise ParameterError(
            name, "sequence", f"must be a sequence of column names; got {columns!r}"
        )
    unknown = [c for c in columns if c not in set(known)]
    if unknown:
        raise ParameterError(name, "known_feature", f"names columns not in X: {unknown}")
    return list(columns)


def check_directions(
    monotone: Mapping[str, int] | None, known: Sequence[str], categorical: Sequence[str]
) -> dict[str, int]:
    """Monotone directions: keys are features of X, values -1, 0 or +1, categoricals 0."""
    if monotone is None:
        return {}
    if not isinstance(monotone, Mapping):
        raise ParameterError("monotone", "mapping", "must map feature names to -1, 0 or +1")
    check_columns("monotone", list(monotone), known)
    directions: dict[str, int] = {}
    for feature, direction in monotone.items():
        if isinstance(direction, bool) or direction not in (-1, 0, 1):
            raise ParameterError(
                "monotone",
                "direction",
                f"{feature}: allowed values are -1, 0, +1; got {direction!r}",
            )
        if direction != 0 and feature in categorical:
            raise ParameterError(
                "monotone", "categorical_unconstrained", f"{feature} is categorical: use 0"
            )
        directions[feature] = int(direction)
    return directions


# --------------------------------------------------------------------------------------
# The estimator


class LightGBMChampion(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted trees for the probability of default, monotone where the metadata says.

    Parameters
    ----------
    n_estimators
        Maximum number of trees; early stopping usually uses fewer.
    learning_rate
        Shrinkage of each tree. Small values with many trees generalise better.
    num_leaves, max_depth
        Size of each tree. Kept small on purpose: credit data needs few interactions and
        the cost of exact TreeSHAP explanations grows with the square of the depth.
    min_child_samples
        Fewest entities in a leaf: a leaf's bad rate should rest on enough defaults.
    subsample, subsample_freq, colsample_bytree
        Share of rows (re-drawn every ``subsample_freq`` trees) and of features per tree.
    reg_lambda
        L2 penalty on leaf values.
    monotone
        Expected direction of risk per feature (``+1`` raises the PD, ``-1`` lowers it, 0 or
        absent free), normally ``{s.name: s.direction for s in feature_specs()}``.
    categorical
        Columns to treat as categorical in addition to those of string, object or category
        dtype (e.g. integer industry codes). Categorical features are never constrained.
    early_stopping_rounds
        Stop when the validation log-loss has not improved for this many trees (only with
        ``eval_set``); None trains all ``n_estimators`` trees.
    random_state
        Seed of the row and feature sampling; None draws one.
    n_jobs
        Threads used by LightGBM to train and to predict batches of 1,000 rows or more
        (-1: all cores). Smaller batches, such as one request, run on one thread.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained trees, cut at the best iteration.
    best_iteration_ : int
        Number of trees kept.
    classes_ : ndarray
        The two labels; ``classes_[1]`` is the default event.
    feature_names_in_ : ndarray
        Column names, when fitted on a DataFrame with string column names.
    feature_names_ : list of str
        Names of the features as the booster knows them: ``feature_names_in_``, or ``x0``,
        ``x1``, … for an array.
    n_features_in_ : int
        Number of features.
    monotone_constraints_ : list of int
        Constraint of each feature, aligned with ``feature_names_``.
    categories_ : dict of str to list
        Categories seen at fit for each categorical feature.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"overdue_months": rng.integers(0, 12, 400),
    ...                   "capital": rng.normal(size=400)})
    >>> y = (rng.random(400) < 0.05 + 0.05 * X.overdue_months).astype(int)
    >>> model = LightGBMChampion(n_estimators=50, monotone={"overdue_months": 1}).fit(X, y)
    >>> model.monotone_constraints_
    [1, 0]
    >>> pd_ = model.predict_proba(X)[:, 1]
    >>> bool(np.allclose(model.contributions(X).sum(axis=1), model.decision_function(X)))
    True
    """

    def __init__(
        self,
        n_estimators: int = 600,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        max_depth: int = 4,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        subsample_freq: int = 1,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        monotone: Mapping[str, int] | None = None,
        categorical: Sequence[str] | None = None,
        early_stopping_rounds: int | None = 100,
        random_state: int | None = 0,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.monotone = monotone
        self.categorical = categorical
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        return tags

    # ---- fitting

    def fit(self, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None = None) -> Self:
        """Train on ``(X, y)``, stopping early on ``eval_set = (X_valid, y_valid)`` if given.

        Raises
        ------
        ParameterError
            A parameter is outside its allowed values (the message lists them).
        ModelError
            ``y`` is not binary with both classes, or a column breaks the input policy.
        """
        params = self._lightgbm_params()
        frame = feature_frame(self, X, reset=True)
        self.feature_names_: list[str] = list(frame.columns)
        self.classes_, target = binary_target(y)
        if len(target) != len(frame):
            raise ModelError("y", "same_length", f"X has {len(frame)} rows, y {len(target)}")
        categorical = categorical_columns(frame, self.categorical)
        directions = check_directions(self.monotone, self.feature_names_, categorical)
        self.monotone_constraints_ = [directions.get(n, 0) for n in self.feature_names_]
        self.categories_ = learn_categories(frame, categorical)
        self.category_indexes_ = {n: pd.Index(c) for n, c in self.categories_.items()}
        params["monotone_constraints"] = self.monotone_constraints_

        train = lgb.Dataset(
            self._matrix(frame),
            label=target,
            feature_name=self.feature_names_,
            categorical_feature=[self.feature_names_.index(c) for c in categorical],
            params={"verbosity": -1},
        )
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if eval_set is not None:
            valid_sets.append(self._validation_set(eval_set, train))
            if self.early_stopping_rounds is not None:
                callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        booster = lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        best = booster.best_iteration if booster.best_iteration > 0 else None
        self.best_iteration_ = int(best or booster.current_iteration())
        # keep only the trees that are used: the logged booster is the model that is served
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        logger.info("champion fitted: %d trees of %d", self.best_iteration_, self.n_estimators)
        return self

    def _lightgbm_params(self) -> dict[str, Any]:
        """Check every parameter and translate it to LightGBM's names."""
        check_integer("n_estimators", self.n_estimators, 1)
        if self.early_stopping_rounds is not None:
            check_integer("early_stopping_rounds", self.early_stopping_rounds, 1)
        seed = self.random_state
        if seed is None:
            seed = int(check_random_state(None).randint(2**31 - 1))
        seed = check_integer("random_state", seed, 0)
        n_jobs = check_integer("n_jobs", self.n_jobs, -1)
        if n_jobs == 0:
            raise ParameterError("n_jobs", "integer", "must be -1 (all cores) or >= 1; got 0")
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "learning_rate": check_real("learning_rate", self.learning_rate, 0, low_open=True),
            "num_leaves": check_integer("num_leaves", self.num_leaves, 2),
            "max_depth": check_integer("max_depth", self.max_depth, 1),
            "min_data_in_leaf": check_integer("min_child_samples", self.min_child_samples, 1),
            "bagging_fraction": check_real("subsample", self.subsample, 0, 1, low_open=True),
            "bagging_freq": check_integer("subsample_freq", self.subsample_freq, 0),
            "feature_fraction": check_real(
                "colsample_bytree", self.colsample_bytree, 0, 1, low_open=True
            ),
            "lambda_l2": check_real("reg_lambda", self.reg_lambda, 0),
            "seed": seed,
            "num_threads": max(n_jobs, 0),  # LightGBM: 0 means all cores
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }

    def _validation_set(self, eval_set: tuple[Any, Any], train: lgb.Dataset) -> lgb.Dataset:
        if not isinstance(eval_set, tuple) or len(eval_set) != 2:
            raise ParameterError("eval_set", "pair", "must be a tuple (X_valid, y_valid)")
        X_valid, y_valid = eval_set
        frame = feature_frame(self, X_valid, reset=False)
        labels = column_or_1d(y_valid)
        if len(labels) != len(frame):
            raise ModelError("eval_set", "same_length", "X_valid and y_valid differ in length")
        unknown = set(np.unique(labels)) - set(self.classes_)
        if unknown:
            raise ModelError("eval_set", "known_labels", f"labels not seen in y: {unknown}")
        target = np.searchsorted(self.classes_, labels)
        return lgb.Dataset(self._matrix(frame), label=target, reference=train)

    def _matrix(self, frame: pd.DataFrame) -> FloatArray:
        """The float matrix LightGBM sees: categories as codes, missing and unseen as NaN."""
        names = list(frame.columns)
        matrix = np.empty(frame.shape, dtype=np.float64)
        numeric = [j for j, name in enumerate(names) if name not in self.categories_]
        if numeric:
            # one conversion of the whole numeric block (one request: ~85 columns at once
            # instead of one by one); `conform` names the offending column if it fails
            block = frame.iloc[:, numeric]
            try:
                values = block.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                values = conform(block, {}).to_numpy(dtype=np.float64)
            if np.isinf(values).any():
                conform(block, {})  # raises ModelError naming the column
            matrix[:, numeric] = values
        for j, name in enumerate(names):
            if name in self.categories_:
                codes = self._category_index(name).get_indexer(frame[name])
                matrix[:, j] = np.where(codes < 0, np.nan, codes)
        return matrix

    def _category_index(self, name: str) -> pd.Index:
        """The fitted categories of ``name`` as an index (built at fit; older fits: now)."""
        indexes: dict[str, pd.Index] | None = getattr(self, "category_indexes_", None)
        if indexes is not None and name in indexes:
            return indexes[name]
        return pd.Index(self.categories_[name])

    # ---- prediction

    def _apply(self, X: Any) -> tuple[FloatArray, Any]:
        check_is_fitted(self, "booster_")
        frame = feature_frame(self, X, reset=False)
        return self._matrix(frame), frame.index

    def _predict(self, matrix: FloatArray, **kwargs: bool) -> FloatArray:
        # one thread for small batches: OpenMP start-up costs more than a single-row
        # prediction (about 30 µs alone against milliseconds with a thread pool)
        threads = 1 if len(matrix) < SMALL_BATCH else max(int(self.n_jobs), 0)
        values = self.booster_.predict(matrix, num_threads=threads, **kwargs)
        return np.asarray(values, dtype=np.float64)

    def decision_function(self, X: Any) -> FloatArray:
        """Raw score: the log-odds of default, ln(PD / (1 − PD)), before calibration."""
        matrix, _ = self._apply(X)
        return self._predict(matrix, raw_score=True)

    def predict_proba(self, X: Any) -> FloatArray:
        """Probabilities of ``classes_``; column 1 is the (uncalibrated) PD."""
        pd_ = np.exp(-np.logaddexp(0.0, -self.decision_function(X)))  # 1 / (1 + e^-x)
        return np.column_stack([1.0 - pd_, pd_])

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The more likely label (PD above one half). Decisions use calibrated PDs instead."""
        raw = self.decision_function(X)
        return np.asarray(self.classes_[(raw > 0).astype(int)])

    def contributions(self, X: Any) -> pd.DataFrame:
        """Exact TreeSHAP contribution of every feature to every row's log-odds.

        Each row's contributions plus ``base_value`` (the average log-odds of the training
        data) add up to `decision_function`. Positive values raise the PD; the most negative
        ones are the reasons a score is high.

        Returns
        -------
        pandas.DataFrame
            One row per row of X (same index for a DataFrame), columns ``feature_names_``
            followed by ``base_value``.
        """
        matrix, index = self._apply(X)
        values = self._predict(matrix, pred_contrib=True)
        return pd.DataFrame(values, index=index, columns=[*self.feature_names_, BASE_VALUE])
