# ruff: noqa: N803  (scikit-learn names the feature matrix X)
"""The challenger: a weight-of-evidence (WoE) scorecard, binned with optbinning.

A scorecard is the credit industry's classic, fully readable model. Each feature is cut
into a few bins (optbinning's optimal binning: at most ``max_n_bins``, each holding at least
``min_bin_size`` of the entities, with the bad rate monotone where the metadata says so).
Each bin is replaced by its *weight of evidence*

    WoE = ln(share of all goods in the bin / share of all bads in the bin),

positive for bins safer than average. A feature's *information value*,
``IV = Σ (share of goods − share of bads) · WoE`` over its bins, measures how well it
separates goods from bads; features that separate nothing can be left out
(``selection_iv_min``, ``selection_max_pvalue``). A logistic regression on the WoE values
gives the log-odds of default, and the log-odds are rescaled into *points*: every bin of
every feature carries a number of points, and an entity's score is the sum of the points
of its bins — a table an underwriter or a regulator can check by hand.

Missing and unseen values
-------------------------
Missing values get their own ``Missing`` bin, with its own WoE. A category not seen at
``fit`` is treated as missing (the same policy as the champion, `models.champion`). Special
codes (``special_codes``, e.g. FICO's -7, -8, -9 "no record" codes) each get their own bin:
"no bureau file" is information, not a number to be compared with real values. A bin that
was empty at fit (say no missing values were seen) is neutral: WoE 0, the average odds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from optbinning import BinningProcess  # type: ignore[import-untyped]
from scipy.stats import chi2_contingency  # type: ignore[import-untyped]
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from models.champion import (
    binary_target,
    categorical_columns,
    check_directions,
    check_integer,
    check_real,
    conform,
    feature_frame,
    learn_categories,
)
from models.errors import ModelError, ParameterError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
TRENDS = {1: "ascending", -1: "descending", 0: "auto"}
#: half a count added to each side of a non-empty bin, so that a pure bin has a finite WoE
WOE_SMOOTHING = 0.5


@contextmanager
def _quiet_optbinning() -> Iterator[None]:
    """Silence optbinning's use of pandas' deprecated ``inplace=True`` (nothing to fix here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword")
        warnings.filterwarnings("ignore", message="Setting an item of incompatible dtype")
        yield


class WOEScorecard(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Weight-of-evidence scorecard: optimal bins, logistic regression, points per bin.

    Points are scaled the way credit scores are: ``base_points`` points at good:bad odds of
    ``odds`` to 1, and ``pdo`` more points each time the odds double ("points to double the
    odds"). With the defaults, an entity with odds 50:1 (PD ≈ 2 %) scores 600, one with
    odds 100:1 scores 620 and one with odds 25:1 scores 580:

        score = offset + factor · ln(good:bad odds),  factor = pdo / ln 2,
        offset = base_points − factor · ln(odds).

    Parameters
    ----------
    pdo
        Points to double the odds (> 0).
    odds
        Good:bad odds at which the score equals ``base_points`` (> 0).
    base_points
        Score at ``odds``.
    special_codes
        Numeric values that mean "no information of this kind" rather than a quantity
        (FICO's -7, -8, -9). Each code gets its own bin in every numeric feature.
    monotone
        Expected direction of risk per feature: ``+1`` makes the bad rate ascend with the
        value, ``-1`` descend; 0 or absent lets optbinning choose the trend (``auto``).
    categorical
        Columns to bin as categories in addition to those of string, object or category
        dtype.
    max_n_bins
        Most bins per feature, special and missing bins not counted.
    min_bin_size
        Smallest share of the entities in a bin, in (0, 0.5].
    C
        Inverse strength of the logistic regression's L2 penalty.
    selection_iv_min
        Drop features whose information value (IV) is below this (0 keeps all). As a rule
        of thumb an IV under 0.02 is useless and one over 0.3 strong.
    selection_max_pvalue
        Keep a feature below ``selection_iv_min`` all the same when its bins are
        significantly related to default: the p-value of the chi-square test of
        independence between its non-empty bins and the outcome is at most this. Whether
        an IV is noise depends on the sample: for fixed bins, a feature unrelated to
        default shows an IV of about ``(bins − 1) · (1 / goods + 1 / bads)``, some 0.02 on
        a few hundred entities but 0.001 on tens of thousands, where an IV of 0.01 is a
        real, estimable signal. The bins are chosen to separate goods from bads, which
        makes the nominal p-value optimistic (on 20,000 entities two pure-noise features
        in three reach p < 0.05, none p < 0.001): use a small value such as 0.001. None
        (the default) applies ``selection_iv_min`` alone.

    Attributes
    ----------
    binning_process_ : optbinning.BinningProcess
        The fitted binning of every feature.
    estimator_ : sklearn.linear_model.LogisticRegression
        The regression on the WoE of the selected features.
    variables_ : list of str
        The selected features, in the order of ``estimator_.coef_``.
    p_values_ : dict of str to float
        P-value of the chi-square test of independence between each feature's bins and the
        outcome (1 for a feature with a single non-empty bin).
    bins_ : pandas.DataFrame
        Every bin of every feature, selected or not: counts of goods and bads, event rate,
        WoE and IV. WoE adds half a count to each side of a non-empty bin, so that a bin
        with no bads (frequent for a small special-code bin) gets a finite WoE rather than
        optbinning's neutral 0.
    classes_, feature_names_in_, feature_names_, n_features_in_, categories_
        As in `models.champion.LightGBMChampion`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"overdue_months": rng.integers(0, 12, 500),
    ...                   "industry": rng.choice(["food", "shoes", "valves"], 500)})
    >>> y = (rng.random(500) < 0.05 + 0.05 * X.overdue_months).astype(int)
    >>> card = WOEScorecard(monotone={"overdue_months": 1}).fit(X, y)
    >>> table = card.points_table()
    >>> list(table.columns)
    ['variable', 'bin', 'count', 'event_rate', 'woe', 'iv', 'points']
    >>> score, pd_ = card.to_score(X), card.predict_proba(X)[:, 1]
    >>> bool(np.all(np.diff(score[np.argsort(pd_)]) <= 1e-9))  # higher PD, fewer points
    True
    """

    def __init__(
        self,
        pdo: float = 20.0,
        odds: float = 50.0,
        base_points: float = 600.0,
        special_codes: Sequence[float] | None = None,
        monotone: Mapping[str, int] | None = None,
        categorical: Sequence[str] | None = None,
        max_n_bins: int = 10,
        min_bin_size: float = 0.05,
        C: float = 1.0,
        selection_iv_min: float = 0.0,
        selection_max_pvalue: float | None = None,
    ) -> None:
        self.pdo = pdo
        self.odds = odds
        self.base_points = base_points
        self.special_codes = special_codes
        self.monotone = monotone
        self.categorical = categorical
        self.max_n_bins = max_n_bins
        self.min_bin_size = min_bin_size
        self.C = C
        self.selection_iv_min = selection_iv_min
        self.selection_max_pvalue = selection_max_pvalue

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        return tags

    # ---- fitting

    def fit(self, X: Any, y: Any) -> Self:
        """Bin every feature, fit the regression on the WoE values and derive the points.

        Raises
        ------
        ParameterError
            A parameter is outside its allowed values (the message lists them).
        ModelError
            ``y`` is not binary with both classes, a column breaks the input policy, or no
            feature passes the selection (``selection_iv_min``, ``selection_max_pvalue``).
        """
        self._check_parameters()
        frame = feature_frame(self, X, reset=True)
        self.feature_names_: list[str] = list(frame.columns)
        self.classes_, target = binary_target(y)
        if len(target) != len(frame):
            raise ModelError("y", "same_length", f"X has {len(frame)} rows, y {len(target)}")
        categorical = categorical_columns(frame, self.categorical)
        directions = check_directions(self.monotone, self.feature_names_, categorical)
        self.categories_ = learn_categories(frame, categorical)

        numeric = [n for n in self.feature_names_ if n not in categorical]
        # a feature never observed at fit (all missing) carries no information; optbinning
        # cannot pre-bin it, so it is binned as a constant: one bin, WoE 0, at fit and after
        self.empty_features_ = [n for n in numeric if frame[n].isna().all()]
        codes = self.special_codes or ()
        binning = BinningProcess(
            variable_names=self.feature_names_,
            max_n_bins=self.max_n_bins,
            min_bin_size=self.min_bin_size,
            categorical_variables=categorical or None,
            special_codes={f"special {c:g}": c for c in codes} or None,
            binning_fit_params={
                n: {"monotonic_trend": TRENDS[directions.get(n, 0)]} for n in numeric
            },
        )
        with _quiet_optbinning():
            self.binning_process_ = binning.fit(self._binning_input(frame), target)
        self.bins_ = pd.concat([self._bin_table(n) for n in self.feature_names_], ignore_index=True)
        self.p_values_ = {n: _independence_p_value(self.bins_, n) for n in self.feature_names_}
        self.variables_ = self._select()
        self.estimator_ = LogisticRegression(C=self.C, max_iter=1_000)
        self.estimator_.fit(self._woe(frame).to_numpy(), target)
        reversed_ = [
            v for v, c in zip(self.variables_, self.estimator_.coef_[0], strict=True) if c > 0
        ]
        if reversed_:
            logger.warning("coefficients against their WoE (collinear features?): %s", reversed_)
        return self

    def _select(self) -> list[str]:
        """Features with IV >= ``selection_iv_min`` or p-value <= ``selection_max_pvalue``."""
        iv = self.bins_.groupby("variable", sort=False)["iv"].sum()
        max_p = -1.0 if self.selection_max_pvalue is None else float(self.selection_max_pvalue)
        selected = [
            n
            for n in self.feature_names_
            if iv[n] >= self.selection_iv_min or self.p_values_[n] <= max_p
        ]
        if not selected:
            rule = f"IV >= {self.selection_iv_min}"
            if self.selection_max_pvalue is not None:
                rule += f" or p-value <= {self.selection_max_pvalue}"
            raise ModelError("selection_iv_min", "keeps_a_feature", f"no feature has {rule}")
        return selected

    def _check_parameters(self) -> None:
        check_real("pdo", self.pdo, 0, low_open=True)
        check_real("odds", self.odds, 0, low_open=True)
        check_real("base_points", self.base_points, -np.inf, np.inf)
        check_integer("max_n_bins", self.max_n_bins, 2)
        check_real("min_bin_size", self.min_bin_size, 0, 0.5, low_open=True)
        check_real("C", self.C, 0, low_open=True)
        check_real("selection_iv_min", self.selection_iv_min, 0)
        if self.selection_max_pvalue is not None:
            check_real("selection_max_pvalue", self.selection_max_pvalue, 0, 1)
        codes: object = self.special_codes
        if codes is not None and (isinstance(codes, str) or not isinstance(codes, Sequence)):
            raise ParameterError("special_codes", "numbers", "must be a sequence of numbers")
        for code in self.special_codes or ():
            check_real("special_codes", code, -np.inf, np.inf)

    def _binning_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Numeric features as floats, categorical ones as objects with NaN for missing."""
        conformed = conform(frame, self.categories_)
        for name in self.categories_:
            conformed[name] = np.asarray(conformed[name].astype(object), dtype=object)
        for name in getattr(self, "empty_features_", ()):
            conformed[name] = 0.0
        return conformed

    def _bin_table(self, name: str) -> pd.DataFrame:
        """One feature's bins with counts, smoothed WoE and IV (bin ids as optbinning's)."""
        with _quiet_optbinning():
            table = self.binning_process_.get_binned_variable(name).binning_table.build(
                show_digits=4, add_totals=False
            )
        goods = table["Non-event"].to_numpy(dtype=np.float64)
        bads = table["Event"].to_numpy(dtype=np.float64)
        count = goods + bads
        half = np.where(count > 0, WOE_SMOOTHING, 0.0)
        good_share = (goods + half) / (goods.sum() + half.sum())
        bad_share = (bads + half) / (bads.sum() + half.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            woe = np.where(count > 0, np.log(good_share / bad_share), 0.0)
            event_rate = np.where(count > 0, bads / count, np.nan)
        return pd.DataFrame(
            {
                "variable": name,
                "bin_id": np.arange(len(table)),
                "bin": [_bin_label(b) for b in table["Bin"]],
                "count": count.astype(np.int64),
                "goods": goods.astype(np.int64),
                "bads": bads.astype(np.int64),
                "event_rate": event_rate,
                "woe": woe,
                "iv": (good_share - bad_share) * woe,
            }
        )

    # ---- the scorecard as tables

    @property
    def factor(self) -> float:
        """Points per unit of log-odds: ``pdo / ln 2``."""
        return float(self.pdo) / float(np.log(2.0))

    @property
    def offset(self) -> float:
        """Score at even odds (1:1): ``base_points − factor · ln(odds)``."""
        return float(self.base_points) - self.factor * float(np.log(self.odds))

    def points_table(self) -> pd.DataFrame:
        """Points of every bin of every selected feature (the readable scorecard).

        Returns
        -------
        pandas.DataFrame
            Columns ``variable, bin, count, event_rate, woe, iv, points``. An entity's score
            is the sum of the points of its bins, one per feature.
        """
        check_is_fitted(self, "estimator_")
        table = self.bins_[self.bins_["variable"].isin(self.variables_)].copy()
        coef = dict(zip(self.variables_, self.estimator_.coef_[0], strict=True))
        table["points"] = self._points(table["variable"].map(coef), table["woe"])
        columns = ["variable", "bin", "count", "event_rate", "woe", "iv", "points"]
        return table[columns].reset_index(drop=True)

    def iv_table(self) -> pd.DataFrame:
        """Information value of every feature, strongest first, with the selection result.

        Returns
        -------
        pandas.DataFrame
            Columns ``variable, n_bins, iv, p_value, selected, coefficient``; ``n_bins``
            counts the non-empty bins (special and missing included), ``p_value`` is that of
            the chi-square test of independence between the bins and the outcome.
        """
        check_is_fitted(self, "estimator_")
        coef = dict(zip(self.variables_, self.estimator_.coef_[0], strict=True))
        grouped = self.bins_.groupby("variable", sort=False)
        table = pd.DataFrame(
            {
                "n_bins": grouped["count"].apply(lambda c: int((c > 0).sum())),
                "iv": grouped["iv"].sum(),
            }
        ).rename_axis("variable")
        table = table.reset_index()
        table["p_value"] = table["variable"].map(self.p_values_).astype(np.float64)
        table["selected"] = table["variable"].isin(self.variables_)
        table["coefficient"] = table["variable"].map(coef).astype(np.float64)
        return table.sort_values("iv", ascending=False, ignore_index=True)

    def _points(self, coef: Any, woe: Any) -> Any:
        share = 1.0 / len(self.variables_)
        intercept = float(self.estimator_.intercept_[0])
        return self.offset * share - self.factor * (coef * woe + intercept * share)

    # ---- prediction

    def _woe(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The WoE of each row's bin, for every selected feature."""
        with _quiet_optbinning():
            bins = self.binning_process_.transform(
                self._binning_input(frame),
                metric="indices",
                metric_special="empirical",
                metric_missing="empirical",
            )
        columns = {}
        for name in self.variables_:
            woe = self.bins_.loc[self.bins_["variable"] == name, "woe"].to_numpy()
            columns[name] = woe[np.asarray(bins[name], dtype=np.int64)]
        return pd.DataFrame(columns, index=frame.index)

    def transform_woe(self, X: Any) -> pd.DataFrame:
        """The WoE of each row's bin for every selected feature (the regression's input)."""
        check_is_fitted(self, "estimator_")
        return self._woe(feature_frame(self, X, reset=False))

    def decision_function(self, X: Any) -> FloatArray:
        """Log-odds of default, ln(PD / (1 − PD)), before calibration."""
        woe = self.transform_woe(X)
        return np.asarray(self.estimator_.decision_function(woe.to_numpy()), dtype=np.float64)

    def predict_proba(self, X: Any) -> FloatArray:
        """Probabilities of ``classes_``; column 1 is the (uncalibrated) PD."""
        pd_ = np.exp(-np.logaddexp(0.0, -self.decision_function(X)))  # 1 / (1 + e^-x)
        return np.column_stack([1.0 - pd_, pd_])

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The more likely label (PD above one half). Decisions use calibrated PDs instead."""
        raw = self.decision_function(X)
        return np.asarray(self.classes_[(raw > 0).astype(int)])

    def points(self, X: Any) -> pd.DataFrame:
        """Points of each row's bin for every selected feature; rows sum to `to_score`."""
        woe = self.transform_woe(X)
        coef = self.estimator_.coef_[0]
        return pd.DataFrame(
            self._points(coef, woe.to_numpy()), index=woe.index, columns=woe.columns
        )

    def to_score(self, X: Any) -> FloatArray:
        """Scorecard points: ``offset + factor · ln(good:bad odds)``; higher is safer."""
        return np.asarray(self.points(X).sum(axis=1).to_numpy(), dtype=np.float64)


def _independence_p_value(bins: pd.DataFrame, name: str) -> float:
    """P-value of the chi-square test of independence between a feature's bins and default.

    Only non-empty bins count; a feature with a single one carries no information (1.0).
    """
    rows = bins[(bins["variable"] == name) & (bins["count"] > 0)]
    if len(rows) < 2:
        return 1.0
    counts = rows[["goods", "bads"]].to_numpy(dtype=np.float64)
    return float(chi2_contingency(counts).pvalue)


def _bin_label(value: Any) -> str:
    """A bin as text: numeric intervals as optbinning prints them, categories joined."""
    if isinstance(value, str):
        return value
    return ", ".join(str(v) for v in np.asarray(value, dtype=object).ravel())
