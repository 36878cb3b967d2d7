"""信用户 / 信用村 / 信用乡镇 on hand-made villages."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from scoring.errors import ScoringError
from scoring.policy import load_policy
from scoring.rural import households, towns, villages

POLICY = load_policy()
GOOD, BAD = POLICY.grade_names[0], POLICY.grade_names[-1]


def _unit(uscc: str, village: str, *, grade: str = GOOD, **view: Any) -> dict[str, Any]:
    row = {"uscc": uscc, "grade": grade, "overrides": [], "district": "330302", "town": "某镇",
           "village": village, "entity_type": "个体工商户", "is_agricultural": True,
           "pboc_accounts_open": 0, "pboc_delinquent_months_24m": 0,
           "pboc_delinquent_accounts_latest": 0, "pboc_worst_five_class_latest": None,
           "pl_has_registered_loan": 0, "pl_loans_overdue": 0}  # fmt: skip
    row.update(view)
    return row


def _rate(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    frame = pd.DataFrame(rows)
    # grades come from `decide` as an (unordered) categorical
    frame["grade"] = pd.Categorical(frame["grade"], categories=POLICY.grade_names)
    units = households(frame[["uscc", "grade", "overrides"]], frame, frame, POLICY)
    village_table = villages(units, POLICY)
    return units, village_table, towns(village_table, POLICY)


def _village(name: str, good: int, total: int) -> list[dict[str, Any]]:
    return [_unit(f"{name}{i:02d}", name, grade=GOOD if i < good else BAD) for i in range(total)]


def test_credit_village_needs_the_share_of_credit_households() -> None:
    share = POLICY.rural.village_household_share
    enough, short = round(share * 10), round(share * 10) - 1
    _, table, _ = _rate(_village("甲村", enough, 10) + _village("乙村", short, 10))
    rated = table.set_index("village")
    assert bool(rated.loc["甲村", "credit_village"])
    assert not bool(rated.loc["乙村", "credit_village"])
    assert rated.loc["乙村", "credit_household_share"] == pytest.approx(short / 10)


def test_punished_or_delinquent_households_are_not_credit_households() -> None:
    rows = [_unit("u1", "丙村"), _unit("u2", "丙村", pboc_delinquent_months_24m=2),
            _unit("u3", "丙村", pl_loans_overdue=1),
            {**_unit("u4", "丙村"), "overrides": ["punish:gov_dishonest_debtor"]}]  # fmt: skip
    units, _, _ = _rate(rows)
    assert units.set_index("uscc")["credit_household"].to_dict() == {
        "u1": True, "u2": False, "u3": False, "u4": False}  # fmt: skip


def test_npl_ratio_of_borrowers_blocks_a_village() -> None:
    rows = _village("丁村", 10, 10)
    for i in range(5):  # five borrowers, one classed 次级: NPL 20 %
        rows[i].update(pboc_accounts_open=1, pboc_worst_five_class_latest=3 if i == 0 else 1)
    _, table, _ = _rate(rows)
    assert table.loc[0, "npl_ratio"] == pytest.approx(0.2)
    assert not bool(table.loc[0, "credit_village"])


def test_credit_town_needs_half_its_villages() -> None:
    share = POLICY.rural.village_household_share
    good = round(share * 10)
    _, _, town = _rate(_village("甲村", good, 10) + _village("乙村", 0, 10))
    assert town.loc[0, "credit_village_share"] == pytest.approx(0.5)
    assert bool(town.loc[0, "credit_town"]) == (POLICY.rural.town_village_share <= 0.5)
    _, _, town = _rate(_village("甲村", good, 10) + _village("乙村", 0, 10)
                       + _village("戊村", 0, 10))  # fmt: skip
    assert not bool(town.loc[0, "credit_town"])


def test_enterprises_and_places_without_a_village_are_not_households() -> None:
    rows = [_unit("u1", "己村"), _unit("u2", None), _unit("u3", "己村", entity_type="企业",
                                                         is_agricultural=False)]  # fmt: skip
    units, _, _ = _rate(rows)
    assert units["uscc"].tolist() == ["u1"]


def test_missing_columns_are_named() -> None:
    frame = pd.DataFrame([_unit("u1", "庚村")]).drop(columns=["pl_loans_overdue"])
    with pytest.raises(ScoringError, match="pl_loans_overdue") as caught:
        households(frame, frame, frame, POLICY)
    assert caught.value.field == "view"


def test_a_village_whose_npl_rose_by_the_policy_limit_is_not_a_credit_village() -> None:
    rows = _village("戊村", 30, 30)
    for i in range(25):  # twenty-five borrowers, one classed 次级: NPL 4 %, under the cap
        rows[i].update(pboc_accounts_open=1, pboc_worst_five_class_latest=3 if i == 0 else 1)
    units, now, _ = _rate(rows)
    limit = POLICY.rural.village_npl_increase_max
    ratio = float(now.loc[0, "npl_ratio"])
    assert ratio < POLICY.rural.village_npl_max
    assert bool(now.loc[0, "credit_village"])  # last year unknown: not assessed
    steady = now.assign(npl_ratio=ratio - limit / 2)
    risen = now.assign(npl_ratio=ratio - limit)
    assert bool(villages(units, POLICY, previous=steady).loc[0, "credit_village"])
    assert not bool(villages(units, POLICY, previous=risen).loc[0, "credit_village"])
