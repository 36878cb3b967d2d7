# ruff: noqa: N803  (scikit-learn names the feature matrix X)
"""Reason codes (原因码): why an entity's risk is what it is.

The 信易贷 underwriter and the data subject (信息主体) both see the few facts that raised the
entity's risk the most, each under a stable code with a Chinese and an English text built
from the feature metadata and the entity's value (``近6个月贷前查询次数：7``).

Champion
--------
`contributions` gives exact TreeSHAP contributions (LightGBM ``pred_contrib``) of the
champion inside the served `models.calibration.CalibratedModel`, in the champion's
log-odds: for every row, the contributions plus the base value (the average log-odds of the
training data) equal the raw score ``decision_function``. Calibration is a monotone map of
that raw score, so a contribution that raises the raw score raises the calibrated PD too;
the reasons are told in log-odds, before calibration.

The reasons of a row are its contributions that *raised* the risk (strictly positive),
largest first, at most ``top`` of them (the scoring policy's ``reasons.top``). Equal
contributions are ordered by feature order (the columns of the contributions, which are the
model's features in view order), so equal inputs always give equal reasons. With LightGBM's
monotone constraints (its default ``basic`` method keeps every leaf below a split on a
constrained feature on the right side of that split) a feature's TreeSHAP contribution moves
with its value in the feature's direction: more of a ``+1`` feature never lowers its own
contribution, so a reason never says "more of this would have helped".

Registered private loans (DOMAIN.md §4.2)
-----------------------------------------
温州市民间融资管理条例 第十八条: a filed private loan must not be a negative factor for the
borrower's credit grade, and on-time performance is positive credit evidence. The code table
marks the features that describe registered loans *as such* as ``positive_evidence``
(``pl_has_registered_loan``, ``pl_loans``, ``pl_amount``,
``pl_months_since_first_registration``, ``pl_loans_good_standing``,
``pl_loans_settled_on_time``). **Rule: a positive-evidence feature is never a reason.** Its
contribution is dropped whenever it raised the risk, for every entity — with a registered
loan (it would say the loan, its size or its recent start made the result worse: what
第十八条 forbids) or without one (it would say "no registered private loan", marking an
entity down for not filing a voluntary registration). The next contributions move up. The
performance and price features of the same source (overdue, default, months since the last
overdue episode, rates above the 温州指数 or the legal cap) stay reasons: the regulation
protects the filing and good performance, not bad performance. The rule changes what is
reported, not the PD.

Characteristics that are not reasons
------------------------------------
A reason must tell the entity something it can act on or contest. The entity's type,
industry and district, and its owner's age, carry risk in the model (direction 0: no
monotone constraint), but "your district" or "your age" is no reason to give for a worse
result — it reads as discrimination, and the subject can do nothing about it. They are
marked ``reportable: false`` in the code table (allowed only on direction-0 features) and,
like positive evidence, are skipped: their contribution stays in the PD, the next
contributions move up. Fairness by such groups is checked in the validation report
(`scoring.fairness`).

Stable codes
------------
``scoring/reason_codes.yaml`` gives every feature one code whose letter is its source
(``E`` entity, ``G`` government, ``P`` PBOC, ``L`` private lending), e.g. ``P23`` for
``inq_preloan_6m``. Codes are append-only: a new feature takes the next number, a removed
one's code is retired and never given out again (`load_reason_codes` checks all of it).

Challenger
----------
`scorecard_reasons` explains the WOE scorecard the classic adverse-action way: the
characteristics whose bin cost the most points below the best bin of that characteristic
(`points_lost`), with the same rules and the same `Reason` type.

Batches
-------
`reason_columns` computes contributions chunk by chunk and picks the top reasons with
``numpy.partition`` (no per-row Python), returning flat columns ``reason_1_code`` …
``reason_<top>_code`` and ``reason_1_contribution`` … for a batch snapshot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scoring.errors import ScoringError

if TYPE_CHECKING:
    from features.view.metadata import FeatureSpec

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Measure = Literal["log_odds", "points"]
DEFAULT_REASON_CODES_PATH = Path(__file__).with_name("reason_codes.yaml")
#: rows per chunk of `reason_columns` (about 70 MB of contributions for 85 features)
CHUNK_ROWS = 100_000


# --------------------------------------------------------------------------------------
# The code table


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bilingual(_Frozen):
    """A text in Chinese and in English."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class ReasonTexts(_Frozen):
    """How a reason is written: ``template`` with ``{label}`` and ``{value}``, and words."""

    template: Bilingual
    missing: Bilingual
    flag_set: Bilingual
    flag_unset: Bilingual


class ReasonCode(_Frozen):
    """A feature's code; ``positive_evidence`` and not ``reportable`` features are never
    reasons (§4.2, and characteristics an entity cannot act on)."""

    code: str = Field(pattern=r"^[A-Z][0-9]{2,3}$")
    feature: str = Field(min_length=1)
    positive_evidence: bool | None = None
    reportable: bool = True


class RetiredCode(_Frozen):
    """The code of a feature removed from the view: reserved for ever."""

    code: str = Field(pattern=r"^[A-Z][0-9]{2,3}$")
    feature: str = Field(min_length=1)
    retired_in: str = Field(min_length=1)


class ReasonCodeTable(_Frozen):
    """The checked-in table of reason codes (``scoring/reason_codes.yaml``)."""

    version: str = Field(min_length=1)
    prefixes: dict[Literal["entity", "government", "pboc", "private_lending"], str]
    texts: ReasonTexts
    codes: tuple[ReasonCode, ...] = Field(min_length=1)
    retired: tuple[RetiredCode, ...] = ()

    def code_of(self, feature: str) -> str:
        """The code of ``feature``; `ScoringError` if it has none."""
        for entry in self.codes:
            if entry.feature == feature:
                return entry.code
        raise ScoringError("feature", "has_code", f"{feature!r} has no reason code")

    @property
    def positive_evidence(self) -> frozenset[str]:
        """Features never reported as a reason (registered private loans as such)."""
        return frozenset(e.feature for e in self.codes if e.positive_evidence)

    @property
    def never_reasons(self) -> frozenset[str]:
        """Every feature that is never a reason: positive evidence, and not reportable."""
        return self.positive_evidence | {e.feature for e in self.codes if not e.reportable}


def _check_table(table: ReasonCodeTable, specs: Sequence[FeatureSpec]) -> None:
    """The rules of the code table against the feature metadata (module docstring)."""
    by_name = {spec.name: spec for spec in specs}
    letters = list(table.prefixes.values())
    if any(len(p) != 1 or not p.isupper() for p in letters) or len(set(letters)) < len(letters):
        raise ScoringError("prefixes", "one_letter_each", f"distinct capital letters: {letters}")
    for language, text in table.texts.template.model_dump().items():
        if "{label}" not in text or "{value}" not in text:
            raise ScoringError(f"texts.template.{language}", "placeholders", "needs both")
    seen_codes: dict[str, str] = {}
    seen_features: set[str] = set()
    entries = [("codes", i, e.code, e.feature) for i, e in enumerate(table.codes)]
    entries += [("retired", i, e.code, e.feature) for i, e in enumerate(table.retired)]
    for part, i, code, feature in entries:
        where = f"{part}.{i}"
        if code in seen_codes:
            raise ScoringError(f"{where}.code", "unique_code", f"{code} is also {seen_codes[code]}")
        seen_codes[code] = feature
        if part == "retired":
            continue
        if feature in seen_features:
            raise ScoringError(f"{where}.feature", "one_code_per_feature", f"{feature} twice")
        seen_features.add(feature)
        spec = by_name.get(feature)
        if spec is None:
            raise ScoringError(f"{where}.feature", "known_feature", f"{feature} is no feature")
        if code[0] != table.prefixes.get(spec.source):
            raise ScoringError(
                f"{where}.code", "source_prefix", f"{feature} is from {spec.source}: {code}"
            )
        _check_positive_evidence(where, table.codes[i], spec)
    missing = [name for name in by_name if name not in seen_features]
    if missing:
        raise ScoringError("codes", "every_feature", f"features without a code: {missing}")
    for letter in letters:
        numbers = sorted(int(code[1:]) for code in seen_codes if code[0] == letter)
        if numbers != list(range(1, len(numbers) + 1)):
            raise ScoringError(
                "codes", "append_only", f"{letter} codes must run 1…n with no gap: {numbers}"
            )


def _check_positive_evidence(where: str, entry: ReasonCode, spec: FeatureSpec) -> None:
    if not entry.reportable and spec.direction != 0:
        raise ScoringError(
            f"{where}.reportable",
            "direction",
            f"{spec.name} has direction {spec.direction}: a monotone feature is actionable "
            "and stays reportable",
        )
    if entry.positive_evidence and spec.direction != -1:
        raise ScoringError(
            f"{where}.positive_evidence",
            "direction",
            f"{spec.name} has direction {spec.direction}; positive evidence needs -1",
        )
    if (
        spec.source == "private_lending"
        and spec.direction == -1
        and entry.positive_evidence is None
    ):
        raise ScoringError(
            f"{where}.positive_evidence",
            "declared",
            f"{spec.name}: say whether it is positive evidence (true or false)",
        )


def parse_reason_codes(raw: Any, specs: Sequence[FeatureSpec] | None = None) -> ReasonCodeTable:
    """Validate a parsed code table against the feature metadata (default: the view's).

    Raises
    ------
    ScoringError
        Naming the field and the rule: an unknown key, a feature the view does not have
        (``known_feature``), a feature with no code (``every_feature``) or two
        (``one_code_per_feature``), a code used twice (``unique_code``), a letter that is not
        the feature's source (``source_prefix``), a gap in the numbering (``append_only``),
        positive evidence on a feature without direction −1 (``direction``) or not declared
        for a private-lending feature with direction −1 (``declared``).
    """
    try:
        table = ReasonCodeTable.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "reason_codes"
        rule = "unknown_key" if first["type"] == "extra_forbidden" else first["type"]
        raise ScoringError(field, rule, first["msg"]) from None
    _check_table(table, specs if specs is not None else _view_specs())
    return table


def load_reason_codes(
    path: Path | None = None, specs: Sequence[FeatureSpec] | None = None
) -> ReasonCodeTable:
    """Load and check the code table (default: the packaged ``reason_codes.yaml``).

    Examples
    --------
    >>> table = load_reason_codes()
    >>> table.code_of("inq_preloan_6m"), "pl_loans_good_standing" in table.positive_evidence
    ('P23', True)
    """
    source = path or DEFAULT_REASON_CODES_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScoringError("reason_codes", "readable", f"{source.name}: {exc}") from None
    return parse_reason_codes(raw, specs)


@cache
def default_reason_codes() -> ReasonCodeTable:
    """The packaged code table, loaded and checked once."""
    return load_reason_codes()


def _view_specs() -> tuple[FeatureSpec, ...]:
    from features.view import feature_specs  # noqa: PLC0415 - keeps `scoring` light to import

    return feature_specs()


# --------------------------------------------------------------------------------------
# Contributions


def _base_model(model: Any) -> Any:
    """The model inside a `CalibratedModel` (calibration is a monotone map of its score)."""
    return getattr(model, "base_model", model)


def contributions(model: Any, X: Any) -> tuple[pd.DataFrame, FloatArray]:
    """Exact TreeSHAP contributions of the champion, in log-odds, and each row's base value.

    Parameters
    ----------
    model
        A `models.calibration.CalibratedModel` around a `models.champion.LightGBMChampion`
        (as served), or the champion itself.
    X
        The model matrix (`models.datasets.Design.matrix`).

    Returns
    -------
    (pandas.DataFrame, numpy.ndarray)
        Contributions (one column per feature, X's index) and the base value of each row:
        ``contributions.sum(axis=1) + base`` is the champion's ``decision_function``.

    Raises
    ------
    ScoringError
        The model has no tree contributions (use `scorecard_reasons` for the scorecard).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from models.champion import LightGBMChampion
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"inq_preloan_6m": rng.integers(0, 9, 400).astype(float)})
    >>> y = (rng.random(400) < 0.05 + 0.04 * X.inq_preloan_6m).astype(int)
    >>> champion = LightGBMChampion(n_estimators=20, monotone={"inq_preloan_6m": 1}).fit(X, y)
    >>> contrib, base = contributions(champion, X)
    >>> bool(np.allclose(contrib.sum(axis=1) + base, champion.decision_function(X)))
    True
    """
    champion = _base_model(model)
    if not callable(getattr(champion, "contributions", None)):
        raise ScoringError(
            "model",
            "tree_contributions",
            f"{type(champion).__name__} has no TreeSHAP contributions; "
            "explain a scorecard with scorecard_reasons",
        )
    from models.champion import BASE_VALUE  # noqa: PLC0415 - the model has loaded it

    frame = champion.contributions(X)
    base = np.asarray(frame.pop(BASE_VALUE).to_numpy(), dtype=np.float64)
    return frame, base


def points_lost(model: Any, X: Any) -> pd.DataFrame:
    """Points each row's bin costs below the best bin of its characteristic (scorecard).

    The best bin is the one with the most points among the bins seen at fit; a bin empty
    at fit (neutral) never sets the best. Values are zero or positive.

    Raises
    ------
    ScoringError
        The model is not a points scorecard (``points`` and ``points_table``).
    """
    card = _base_model(model)
    if not (
        callable(getattr(card, "points", None)) and callable(getattr(card, "points_table", None))
    ):
        raise ScoringError("model", "scorecard", f"{type(card).__name__} has no points per bin")
    points = card.points(X)
    table = card.points_table()
    best = table[table["count"] > 0].groupby("variable", sort=False)["points"].max()
    fallback = table.groupby("variable", sort=False)["points"].max()
    best = best.reindex(points.columns).fillna(fallback.reindex(points.columns))
    lost = np.maximum(best.to_numpy(dtype=np.float64) - points.to_numpy(dtype=np.float64), 0.0)
    return pd.DataFrame(lost, index=points.index, columns=points.columns)


# --------------------------------------------------------------------------------------
# Choosing the reasons


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason that raised the risk (原因码).

    Attributes
    ----------
    rank
        1 for the reason that raised the risk the most.
    code, feature
        The stable code and the feature it stands for.
    contribution
        How much it raised the risk: log-odds (champion) or points lost (scorecard).
    measure
        ``"log_odds"`` or ``"points"``.
    value
        The entity's value of the feature (None when missing).
    zh, en
        The reason as text, e.g. ``近6个月贷前查询次数：7``.
    """

    rank: int
    code: str
    feature: str
    contribution: float
    measure: Measure
    value: float | str | None
    zh: str
    en: str


def _check_top(top: int) -> int:
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ScoringError("top", "positive_integer", f"must be an integer >= 1; got {top!r}")
    return int(top)


def _codes_and_eligible(
    columns: Sequence[str], table: ReasonCodeTable
) -> tuple[list[str], BoolArray]:
    """Code of every column, and which columns may be reasons at all."""
    code_of = {entry.feature: entry.code for entry in table.codes}
    unknown = [name for name in columns if name not in code_of]
    if unknown:
        raise ScoringError("contributions", "known_feature", f"no reason code for {unknown}")
    barred = table.never_reasons
    eligible = np.array([name not in barred for name in columns], dtype=np.bool_)
    return [code_of[name] for name in columns], eligible


def select_top(values: Any, eligible: Any, top: int) -> tuple[IntArray, FloatArray]:
    """Per row, the columns of the ``top`` largest positive eligible values, largest first.

    Vectorised: ``numpy.partition`` finds each row's ``top``-th largest value; the values
    above it are taken, then the values equal to it in column order, so that ties always go
    to the earlier column; the chosen few are then sorted (stable, so ties keep column
    order). No full sort of the row and no Python loop over rows.

    Parameters
    ----------
    values
        A 2-D array (rows × features) of contributions.
    eligible
        One boolean per feature: may it be a reason at all.
    top
        How many reasons per row.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Column indices (rows × top, -1 where a row has fewer reasons) and their values
        (NaN there).

    Examples
    --------
    >>> columns, values = select_top([[0.2, 0.5, 0.2, -1.0]], [True] * 4, 3)
    >>> columns.tolist(), values.tolist()
    ([[1, 0, 2]], [[0.5, 0.2, 0.2]])
    >>> select_top([[0.2, 0.5, 0.2, -1.0]], [True, False, True, True], 3)[0].tolist()
    [[0, 2, -1]]
    """
    top = _check_top(top)
    matrix = np.asarray(values, dtype=np.float64)
    allowed = np.asarray(eligible, dtype=np.bool_)
    n_rows, n_cols = matrix.shape
    if allowed.shape != (n_cols,):
        raise ScoringError("eligible", "one_per_feature", f"{allowed.shape} for {n_cols} features")
    columns = np.full((n_rows, top), -1, dtype=np.intp)
    picked = np.full((n_rows, top), np.nan)
    k = min(top, n_cols)
    if n_rows == 0 or k == 0:
        return columns, picked
    masked = np.where(allowed & (matrix > 0.0), matrix, -np.inf)
    kth = np.partition(masked, n_cols - k, axis=1)[:, n_cols - k, None]
    above = masked > kth
    tied = masked == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    index = np.nonzero(chosen)[1].reshape(n_rows, k)  # column order within each row
    chosen_values = np.take_along_axis(masked, index, axis=1)
    order = np.argsort(-chosen_values, axis=1, kind="stable")
    index = np.take_along_axis(index, order, axis=1)
    chosen_values = np.take_along_axis(chosen_values, order, axis=1)
    found = np.isfinite(chosen_values)
    columns[:, :k] = np.where(found, index, -1)
    picked[:, :k] = np.where(found, chosen_values, np.nan)
    return columns, picked


def top_reason_columns(
    contrib: pd.DataFrame, top: int, *, codes: ReasonCodeTable | None = None
) -> pd.DataFrame:
    """The top reasons of every row as flat columns (the batch form of `top_reasons`).

    Returns
    -------
    pandas.DataFrame
        ``contrib``'s index; ``reason_1_code`` … ``reason_<top>_code`` (strings, missing
        where a row has fewer reasons) then ``reason_1_contribution`` … (NaN there).

    Examples
    --------
    >>> contrib = pd.DataFrame({"inq_preloan_6m": [0.4, -0.1], "pl_loans": [0.9, 0.0]})
    >>> top_reason_columns(contrib, 2).to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'reason_1_code': ['P23', nan], 'reason_2_code': [nan, nan],
     'reason_1_contribution': [0.4, nan], 'reason_2_contribution': [nan, nan]}
    """
    table = codes or default_reason_codes()
    names, eligible = _codes_and_eligible(list(contrib.columns), table)
    index, values = select_top(contrib.to_numpy(dtype=np.float64), eligible, top)
    lookup = np.array([*names, None], dtype=object)  # index -1 is None
    out: dict[str, Any] = {}
    for k in range(index.shape[1]):
        out[f"reason_{k + 1}_code"] = pd.array(lookup[index[:, k]], dtype="str")
    for k in range(index.shape[1]):
        out[f"reason_{k + 1}_contribution"] = values[:, k]
    return pd.DataFrame(out, index=contrib.index)


def reason_columns(
    model: Any,
    X: pd.DataFrame,
    top: int,
    *,
    codes: ReasonCodeTable | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> pd.DataFrame:
    """Champion reasons of a whole batch as flat columns (see `top_reason_columns`).

    Contributions are computed ``chunk_rows`` rows at a time (LightGBM on the champion's
    ``n_jobs`` threads), so memory stays bounded for a million entities.
    """
    _check_top(top)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ScoringError("chunk_rows", "positive_integer", f"got {chunk_rows!r}")
    table = codes or default_reason_codes()
    parts = []
    for start in range(0, len(X), chunk_rows):
        contrib, _ = contributions(model, X.iloc[start : start + chunk_rows])
        parts.append(top_reason_columns(contrib, top, codes=table))
        logger.debug("reasons: %d of %d rows", min(start + chunk_rows, len(X)), len(X))
    if not parts:  # no rows: the columns all the same
        empty = pd.DataFrame(np.empty((0, X.shape[1])), index=X.index, columns=X.columns)
        return top_reason_columns(empty, top, codes=table)
    return pd.concat(parts) if len(parts) > 1 else parts[0]


def top_reasons(
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    top: int,
    *,
    codes: ReasonCodeTable | None = None,
) -> list[list[Reason]]:
    """The reasons of every row: its largest contributions that raised the risk.

    Parameters
    ----------
    contrib
        Contributions in log-odds (`contributions`), one column per feature.
    X
        The rows explained (same length and order), for the values in the texts.
    specs
        Feature metadata (``features.view.feature_specs()``) for the texts.
    top
        Most reasons per row (the scoring policy's ``reasons.top``).
    codes
        The code table; default the packaged one.

    Examples
    --------
    >>> from features.view import feature_specs
    >>> names = ["inq_preloan_6m", "pl_months_since_first_registration", "entity_age_months"]
    >>> contrib = pd.DataFrame([[0.4, 0.9, -0.2]], columns=names)
    >>> X = pd.DataFrame([[7.0, 5.0, 30.0]], columns=names)
    >>> [(r.code, r.zh) for r in top_reasons(contrib, X, feature_specs(), 4)[0]]
    [('P23', '近6个月贷前查询次数：7')]
    """
    return _reasons(contrib, X, specs, top, codes or default_reason_codes(), "log_odds")


def explain(
    model: Any,
    X: pd.DataFrame,
    top: int,
    *,
    specs: Sequence[FeatureSpec] | None = None,
    codes: ReasonCodeTable | None = None,
) -> list[list[Reason]]:
    """Champion reasons of a few rows (one request): `contributions` then `top_reasons`.

    Parameters
    ----------
    model
        The served `models.calibration.CalibratedModel` (or the champion itself).
    X
        The model matrix of the rows (`models.datasets.Design.matrix`).
    top
        Most reasons per row (the scoring policy's ``reasons.top``).
    specs, codes
        Feature metadata and code table; default the view's and the packaged ones. A
        service passes the ones it loaded at start-up.

    Returns
    -------
    list of list of Reason
        One list per row, largest contribution first, possibly shorter than ``top``.
    """
    contrib, _ = contributions(model, X)
    table = codes or default_reason_codes()
    return _reasons(contrib, X, specs or _view_specs(), top, table, "log_odds")


def scorecard_reasons(
    model: Any,
    X: pd.DataFrame,
    top: int,
    *,
    specs: Sequence[FeatureSpec] | None = None,
    codes: ReasonCodeTable | None = None,
) -> list[list[Reason]]:
    """Challenger reasons: the characteristics that cost the most points (`points_lost`).

    Same rules as the champion's: only bins that cost points, most first, ties by feature
    order (the scorecard's selected features), positive evidence never a reason.
    `Reason.contribution` is in points and `Reason.measure` is ``"points"``.

    Parameters
    ----------
    model
        A `models.calibration.CalibratedModel` around a `models.scorecard.WOEScorecard`,
        or the scorecard itself.
    X, top, specs, codes
        As in `explain`.
    """
    lost = points_lost(model, X)
    table = codes or default_reason_codes()
    return _reasons(lost, X, specs or _view_specs(), top, table, "points")


def _reasons(
    adverse: pd.DataFrame,
    X: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    top: int,
    table: ReasonCodeTable,
    measure: Measure,
) -> list[list[Reason]]:
    names = [str(name) for name in adverse.columns]
    codes, eligible = _codes_and_eligible(names, table)
    if len(X) != len(adverse):
        raise ScoringError("X", "same_rows", f"{len(X)} rows for {len(adverse)} contributions")
    by_name = {spec.name: spec for spec in specs}
    index, values = select_top(adverse.to_numpy(dtype=np.float64), eligible, top)
    used = sorted({int(j) for j in np.unique(index) if j >= 0})
    absent = [names[j] for j in used if names[j] not in X.columns or names[j] not in by_name]
    if absent:
        raise ScoringError("X", "has_features", f"no values or metadata for {absent}")
    cells = {j: X[names[j]].to_numpy() for j in used}
    out: list[list[Reason]] = []
    for i in range(len(adverse)):
        row: list[Reason] = []
        for rank, (j, value) in enumerate(zip(index[i], values[i], strict=True), start=1):
            if j < 0:
                break
            spec = by_name[names[j]]
            cell = _python(cells[int(j)][i])
            zh, en = _texts(spec, cell, table.texts)
            row.append(Reason(rank, codes[j], spec.name, float(value), measure, cell, zh, en))
        out.append(row)
    return out


def describe_reason(
    rank: int,
    code: str,
    contribution: float,
    value: Any,
    *,
    specs: Sequence[FeatureSpec] | None = None,
    codes: ReasonCodeTable | None = None,
) -> Reason:
    """A stored reason (a snapshot's ``reason_k_code`` and contribution) as a `Reason`.

    ``value`` is the entity's value of the feature from the view it was scored on (None
    when unknown: the text then says 无记录 / no record).

    Examples
    --------
    >>> describe_reason(1, "P23", 0.4, 7.0).zh
    '近6个月贷前查询次数：7'
    """
    table = codes or default_reason_codes()
    feature = next((e.feature for e in table.codes if e.code == code), None)
    if feature is None:
        raise ScoringError("reason_code", "known", f"{code!r} is no active reason code")
    spec = next((s for s in (specs or _view_specs()) if s.name == feature), None)
    if spec is None:
        raise ScoringError("feature", "has_metadata", f"{feature!r} has no feature metadata")
    cell = _python(value)
    zh, en = _texts(spec, cell, table.texts)
    return Reason(rank, code, feature, float(contribution), "log_odds", cell, zh, en)


# --------------------------------------------------------------------------------------
# Texts


def _python(value: Any) -> float | str | None:
    """A cell of X as a plain value: None when missing, str for categories, else float."""
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    if isinstance(value, str):
        return value
    return float(value)


def _number(value: float) -> str:
    """``7`` for 7.0, ``1,250,000`` for amounts, ``13.43`` otherwise."""
    if math.isclose(value, round(value), abs_tol=1e-9):
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _texts(spec: FeatureSpec, value: float | str | None, texts: ReasonTexts) -> tuple[str, str]:
    """The reason in Chinese and English: the feature's description and the value."""
    if value is None:
        zh, en = texts.missing.zh, texts.missing.en
    elif spec.kind == "flag" and not isinstance(value, str):
        word = texts.flag_set if value else texts.flag_unset
        zh, en = word.zh, word.en
    elif isinstance(value, str):
        zh = en = value
    elif spec.unit == "share":
        zh = en = f"{_number(100.0 * value)}%"
    else:
        zh = en = _number(value)
    template = texts.template
    return template.zh.format(label=spec.zh, value=zh), template.en.format(label=spec.en, value=en)


__all__ = [
    "DEFAULT_REASON_CODES_PATH",
    "Reason",
    "ReasonCode",
    "ReasonCodeTable",
    "contributions",
    "default_reason_codes",
    "describe_reason",
    "explain",
    "load_reason_codes",
    "parse_reason_codes",
    "points_lost",
    "reason_columns",
    "scorecard_reasons",
    "select_top",
    "top_reason_columns",
    "top_reasons",
]
