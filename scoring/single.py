"""One entity, fast: the same score as `scoring.batch.score_frame`, without pandas.

A request scores one row (pre-approval, a rescore after a repair). `score_frame` spends
nearly all of a single row's time building DataFrames; the trees themselves take a fraction
of a millisecond. `score_one` takes the row as a mapping, builds the champion's float
vector with dictionary lookups, and asks the booster directly for the raw score (then the
calibrator for the PD) and for the TreeSHAP contributions, applying the registered-loan guard
the same way; the decisions come from the same `scoring.decisions.decide`. A test checks
that it equals `score_frame` row by row. Models other than the calibrated LightGBM
champion (the scorecard) take the `score_frame` path.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.view import feature_specs
from scoring.decisions import categories, decide_arrays, needed_columns
from scoring.policy import ScoringPolicy
from scoring.reasons import ReasonCodeTable, _codes_and_eligible, default_reason_codes, select_top

FloatArray = npt.NDArray[np.float64]
#: the registered-loan guard's flags (as `scoring.batch.in_good_standing`)
GOOD_STANDING = ("pl_has_registered_loan", "pl_loans_overdue", "pl_loans_defaulted_5y")


@dataclass(frozen=True)
class _Plan:
    """What one model needs to turn a row into its vector, computed once per model."""

    names: tuple[str, ...]
    codes: tuple[dict[str, int] | None, ...]  # per feature: category → code, None if numeric
    private: tuple[tuple[int, float], ...]  # private-lending feature positions and no-loan values
    reason_codes: tuple[str, ...]
    eligible: npt.NDArray[np.bool_]


_PLANS: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _plan(champion: Any, table: ReasonCodeTable) -> _Plan:
    plan = _PLANS.get(champion)
    if plan is not None:
        return plan
    names = tuple(str(n) for n in champion.feature_names_)
    categories = champion.categories_
    codes = tuple(
        {str(c): i for i, c in enumerate(categories[n])} if n in categories else None for n in names
    )
    position = {n: j for j, n in enumerate(names)}
    private = tuple(
        (position[s.name], np.nan if s.fill is None else float(s.fill))
        for s in feature_specs()
        if s.source == "private_lending" and s.name in position
    )
    reason_codes, eligible = _codes_and_eligible(list(names), table)
    plan = _Plan(names, codes, private, tuple(reason_codes), eligible)
    _PLANS[champion] = plan
    return plan


def _number(value: Any) -> float:
    if value is None:
        return np.nan
    return float(value)


def _vector(row: Mapping[str, Any], plan: _Plan) -> FloatArray:
    vector = np.empty((1, len(plan.names)), dtype=np.float64)
    for j, (name, codes) in enumerate(zip(plan.names, plan.codes, strict=True)):
        value = row[name]
        if codes is None:
            vector[0, j] = _number(value)
        else:
            missing = value is None or (isinstance(value, float) and np.isnan(value))
            code = None if missing else codes.get(str(value))
            vector[0, j] = np.nan if code is None else code
    return vector


def in_good_standing(row: Mapping[str, Any]) -> bool:
    """`scoring.batch.in_good_standing` for one row."""

    def value(name: str) -> float:
        number = _number(row.get(name))
        return 0.0 if np.isnan(number) else number

    has, overdue, defaulted = (value(n) for n in GOOD_STANDING)
    return has > 0 and overdue == 0 and defaulted == 0


def _pd(model: Any, champion: Any, vector: FloatArray) -> float:
    raw = champion.booster_.predict(vector, raw_score=True, num_threads=1)
    probability = np.exp(-np.logaddexp(0.0, -np.asarray(raw, dtype=np.float64)))
    return float(model.calibrator.predict(probability)[0])


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _decide(row: Mapping[str, Any], probability: float, policy: ScoringPolicy) -> dict[str, Any]:
    """`decide` on one row, through its array core: plain values, no DataFrame."""
    columns = {c: np.array([row.get(c)], dtype=object) for c in needed_columns(policy)}
    decided = decide_arrays(columns, np.array([probability]), policy)
    names = categories(policy)
    out: dict[str, Any] = {}
    for column, values in decided.items():
        value = values[0]
        out[column] = names[column][int(value)] if column in names else _native(value)
    return out


def fast_path(model: Any) -> Any | None:
    """The champion inside a calibrated LightGBM model, or None (then use `score_frame`)."""
    base = getattr(model, "base_model", None)
    if base is None or not hasattr(getattr(base, "booster_", None), "predict"):
        return None
    if not hasattr(model, "calibrator"):
        return None
    return base


def score_one(
    row: Mapping[str, Any],
    model: Any,
    policy: ScoringPolicy,
    *,
    reasons: bool = True,
    codes: ReasonCodeTable | None = None,
) -> dict[str, Any]:
    """Score one view row: the same columns and values as `score_frame` gives for it.

    Parameters
    ----------
    row
        One row of the three-in-one view (``uscc``, ``as_of`` and every feature).
    model
        The served calibrated model.
    policy
        The scoring policy.
    reasons
        Add ``reason_k_code`` / ``reason_k_contribution`` (top ``policy.reasons.top``).
    """
    champion = fast_path(model)
    if champion is None:
        from scoring.batch import score_frame  # noqa: PLC0415 - circular at import time

        frame = score_frame(pd.DataFrame([dict(row)]), model, policy, reasons=reasons)
        record: dict[str, Any] = frame.to_dict("records")[0]
        return record
    table = codes or default_reason_codes()
    plan = _plan(champion, table)
    vector = _vector(row, plan)
    probability = _pd(model, champion, vector)
    guarded = False
    if plan.private and in_good_standing(row):
        without = vector.copy()
        for j, fill in plan.private:
            without[0, j] = fill
        lower = _pd(model, champion, without)
        if lower < probability:
            probability, vector, guarded = lower, without, True
    decided = _decide(row, probability, policy)
    out: dict[str, Any] = {
        "uscc": row["uscc"], "as_of": row["as_of"], "pd": probability,
        "registered_loan_guard": guarded, **decided,
    }  # fmt: skip
    if reasons:
        contrib = champion.booster_.predict(vector, pred_contrib=True, num_threads=1)
        values = np.asarray(contrib, dtype=np.float64)[:, : len(plan.names)]
        index, top_values = select_top(values, plan.eligible, policy.reasons.top)
        for k in range(index.shape[1]):
            j = int(index[0, k])
            out[f"reason_{k + 1}_code"] = plan.reason_codes[j] if j >= 0 else None
        for k in range(index.shape[1]):
            out[f"reason_{k + 1}_contribution"] = float(top_values[0, k])
    return out


__all__ = ["fast_path", "in_good_standing", "score_one"]
