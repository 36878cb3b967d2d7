"""Rural credit ratings (农村信用工程): 信用户, 信用村, 信用乡镇 from the scored data.

The rules follow the prefecture example in DOMAIN.md §8, with the thresholds in the scoring
policy (``rural``):

- a **rural household** is a scored individual business, farmers' cooperative or
  agricultural (三农) entity registered in a village; it **borrows** if it has an open PBOC
  account or a registered private loan;
- **信用户**: grade at or better than ``household_min_grade``, no PBOC delinquency in 24
  months, no overdue registered private loan, and no 联合惩戒 override (失信 lists);
- **信用村**: 信用户 ≥ ``village_household_share`` of its households; borrowing households
  without arrears ≥ ``village_no_arrears_share``; NPL ratio (borrowing households whose worst
  five-category class is 次级 or worse, DOMAIN.md §3.6) below ``village_npl_max``;
- **信用乡镇**: 信用村 ≥ ``town_village_share`` of its villages; NPL ratio below
  ``town_npl_max``; borrowing households without arrears ≥ ``town_no_arrears_share``.

The rules' "NPL increase below 1 %" (``village_npl_increase_max``) needs last year's
ratings; pass them as ``previous`` and it is checked, otherwise it is reported as not
assessed (``npl_increase`` is null).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy

PLACE = ["district", "town", "village"]
#: view columns the ratings read
VIEW_COLUMNS = (
    "uscc", "entity_type", "is_agricultural", "pboc_accounts_open",
    "pboc_delinquent_months_24m", "pboc_delinquent_accounts_latest",
    "pboc_worst_five_class_latest", "pl_has_registered_loan", "pl_loans_overdue",
)  # fmt: skip
SUBSTANDARD = 3  # five-category class 3 次级, 4 可疑, 5 损失


def households(
    scored: pd.DataFrame, view: pd.DataFrame, places: pd.DataFrame, policy: ScoringPolicy
) -> pd.DataFrame:
    """One row per rural household: its place, grade and whether it is a 信用户."""
    for name, frame, needed in (
        ("scored", scored, ("uscc", "grade", "overrides")),
        ("view", view, VIEW_COLUMNS),
        ("places", places, ("uscc", *PLACE)),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ScoringError(name, "columns", f"missing columns {missing}")
    rows = (
        scored[["uscc", "grade", "overrides"]]
        .merge(view[list(VIEW_COLUMNS)], on="uscc", validate="one_to_one")
        .merge(places[["uscc", *PLACE]], on="uscc", validate="one_to_one")
    )
    rural = rows["village"].notna() & (
        (rows["entity_type"] != "企业") | rows["is_agricultural"].astype(bool)
    )
    rows = rows[rural].reset_index(drop=True)
    rank = {grade: i for i, grade in enumerate(policy.grade_names)}
    good_grade = rows["grade"].astype(str).map(rank) <= rank[policy.rural.household_min_grade]
    punished = rows["overrides"].map(lambda codes: any(str(c).startswith("punish") for c in codes))
    borrows = (rows["pboc_accounts_open"].fillna(0) > 0) | (
        rows["pl_has_registered_loan"].fillna(0) > 0
    )
    arrears = (rows["pboc_delinquent_accounts_latest"].fillna(0) > 0) | (
        rows["pl_loans_overdue"].fillna(0) > 0
    )
    npl = borrows & (rows["pboc_worst_five_class_latest"].fillna(1) >= SUBSTANDARD)
    credit = (
        good_grade
        & (rows["pboc_delinquent_months_24m"].fillna(0) == 0)
        & (rows["pl_loans_overdue"].fillna(0) == 0)
        & ~punished
    )
    return rows[["uscc", *PLACE, "grade"]].assign(
        borrows=borrows.to_numpy(),
        arrears=(borrows & arrears).to_numpy(),
        npl=npl.to_numpy(),
        credit_household=credit.to_numpy(),
    )


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def villages(
    units: pd.DataFrame, policy: ScoringPolicy, previous: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per village: shares, NPL ratio and whether it is a 信用村."""
    r = policy.rural
    grouped = units.groupby(PLACE, sort=True).agg(
        households=("uscc", "size"),
        credit_households=("credit_household", "sum"),
        borrowing=("borrows", "sum"),
        in_arrears=("arrears", "sum"),
        npl_households=("npl", "sum"),
    )
    out = grouped.assign(
        credit_household_share=grouped.credit_households / grouped.households,
        no_arrears_share=1 - _ratio(grouped.in_arrears, grouped.borrowing),
        npl_ratio=_ratio(grouped.npl_households, grouped.borrowing).fillna(0.0),
    )
    out["npl_increase"] = _increase(out, previous)
    out["credit_village"] = (
        (out.credit_household_share >= r.village_household_share)
        & (out.no_arrears_share.fillna(1.0) >= r.village_no_arrears_share)
        & (out.npl_ratio < r.village_npl_max)
        & (out.npl_increase.fillna(0.0) < r.village_npl_increase_max)
    )
    return out.reset_index()


def towns(village_table: pd.DataFrame, policy: ScoringPolicy) -> pd.DataFrame:
    """One row per town (乡镇): share of 信用村, NPL, arrears and whether it is a 信用乡镇."""
    r = policy.rural
    grouped = village_table.groupby(["district", "town"], sort=True).agg(
        villages=("village", "size"),
        credit_villages=("credit_village", "sum"),
        borrowing=("borrowing", "sum"),
        in_arrears=("in_arrears", "sum"),
        npl_households=("npl_households", "sum"),
    )
    out = grouped.assign(
        credit_village_share=grouped.credit_villages / grouped.villages,
        no_arrears_share=1 - _ratio(grouped.in_arrears, grouped.borrowing),
        npl_ratio=_ratio(grouped.npl_households, grouped.borrowing).fillna(0.0),
    )
    out["credit_town"] = (
        (out.credit_village_share >= r.town_village_share)
        & (out.npl_ratio < r.town_npl_max)
        & (out.no_arrears_share.fillna(1.0) >= r.town_no_arrears_share)
    )
    return out.reset_index()


def _increase(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.Series:
    if previous is None:
        return pd.Series(np.nan, index=current.index, dtype="float64")
    before = previous.set_index(PLACE)["npl_ratio"]
    return (current["npl_ratio"] - before.reindex(current.index)).astype("float64")


__all__ = ["households", "towns", "villages"]
