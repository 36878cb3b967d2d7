"""From a calibrated PD to a score, a grade of the master scale and a supervision class.

The score is the classic points-to-double-the-odds scale::

    score = base_score + pdo / ln 2 · ln(odds / base_odds),   odds = (1 − PD) / PD

with the PD first kept in ``[pd_floor, 1 − pd_floor]`` and the score clipped to
``[min_score, max_score]``. Inside the clip the map is strictly decreasing and `pd_from_score`
inverts it exactly. Grades come from the PD (not the rounded score), so that a grade band is
a PD band: a PD equal to a band's ``pd_max`` belongs to that band.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.errors import ScoringError
from scoring.policy import ScoreScale, ScoringPolicy

FloatArray = npt.NDArray[np.float64]


def check_pd(pd: Any, field: str = "pd") -> FloatArray:
    """PDs as a float array; `ScoringError` if any is missing or outside [0, 1]."""
    values = np.asarray(pd, dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise ScoringError(field, "probability", "PDs must be finite and lie in [0, 1]")
    return values


def _factor(scale: ScoreScale) -> float:
    return scale.pdo / math.log(2.0)


def score_from_pd(pd: Any, scale: ScoreScale) -> FloatArray:
    """Scores of PDs (unrounded).

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> scale = load_policy().score
    >>> score_from_pd([0.0196078431372549, 0.0003, 0.99], scale).round(1).tolist()
    [660.0, 932.6, 350.0]
    """
    p = np.clip(check_pd(pd), scale.pd_floor, 1.0 - scale.pd_floor)
    raw = scale.base_score + _factor(scale) * np.log((1.0 - p) / p / scale.base_odds)
    out: FloatArray = np.clip(raw, scale.min_score, scale.max_score)
    return out


def pd_from_score(score: Any, scale: ScoreScale) -> FloatArray:
    """The PD a score stands for (the inverse of `score_from_pd` inside the clip)."""
    s = np.asarray(score, dtype=np.float64)
    if not np.isfinite(s).all():
        raise ScoringError("score", "finite", "scores must be finite numbers")
    odds = scale.base_odds * np.exp((s - scale.base_score) / _factor(scale))
    out: FloatArray = 1.0 / (1.0 + odds)
    return out


def grade_index(pd: Any, policy: ScoringPolicy) -> npt.NDArray[np.int64]:
    """Index of each PD's grade in ``policy.grades`` (0 = best)."""
    bounds = np.array([band.pd_max for band in policy.grades])
    index: npt.NDArray[np.int64] = np.searchsorted(bounds, check_pd(pd), side="left")
    return index


def grades(pd: Any, policy: ScoringPolicy) -> npt.NDArray[np.str_]:
    """Grade of each PD on the master scale.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> grades([0.001, 0.002, 0.0021, 0.2, 1.0], load_policy()).tolist()
    ['AAA', 'AAA', 'AA', 'CC', 'D']
    """
    names = np.array(policy.grade_names)
    out: npt.NDArray[np.str_] = names[grade_index(pd, policy)]
    return out


def classes(grade: Any, policy: ScoringPolicy) -> npt.NDArray[np.str_]:
    """Supervision class of each grade."""
    mapping = policy.class_of_grade
    values = np.asarray(grade)
    unknown = sorted(set(values.tolist()) - set(mapping))
    if unknown:
        raise ScoringError("grade", "known", f"not grades of the policy: {unknown[:5]}")
    out: npt.NDArray[np.str_] = np.vectorize(mapping.__getitem__, otypes=[str])(values)
    return out


__all__ = ["check_pd", "classes", "grade_index", "grades", "pd_from_score", "score_from_pd"]
