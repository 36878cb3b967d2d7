"""The fairness check on hand-made groups: disparities the true risk explains and others."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.identifiers import make_resident_id, parse_resident_id
from scoring.errors import ScoringError
from scoring.fairness import (
    UNKNOWN,
    AttributeFairness,
    entity_groups,
    fairness,
    resident_id_gender,
)
from scoring.policy import load_policy

POLICY = load_policy()
CUT = POLICY.pre_approval.approve_max_pd
LOW, HIGH = CUT / 3, CUT * 3  # a true PD that passes the cut-off, and one that does not


def _cases(spec: dict[str, tuple[int, int, float]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """``{group: (entities, approved, true PD)}`` → scored rows, groups and true risk."""
    scored, groups, risk = [], [], {}
    for name, (n, approved, true_pd) in spec.items():
        for i in range(n):
            uscc = f"{name}-{i:04d}"
            ok = i < approved
            scored.append({"uscc": uscc, "pd": LOW if ok else HIGH,
                           "decision": "approve" if ok else "decline",
                           "grade": "AA" if ok else "CCC"})  # fmt: skip
            groups.append({"uscc": uscc, "gender": name})
            risk[uscc] = true_pd
    return pd.DataFrame(scored), pd.DataFrame(groups), pd.Series(risk)


def _gender(spec: dict[str, tuple[int, int, float]]) -> AttributeFairness:
    scored, groups, risk = _cases(spec)
    return fairness(scored, groups, risk, POLICY, attributes=["gender"]).attribute("gender")


def test_equal_true_risk_but_lower_approval_is_flagged() -> None:
    table = _gender({"female": (100, 50, LOW), "male": (100, 90, LOW)})
    by = {g.group: g for g in table.groups}
    assert by["female"].approval_rate == 0.5
    assert by["male"].approval_rate == 0.9
    assert by["female"].justified_approval_rate == by["male"].justified_approval_rate == 1.0
    assert by["female"].flagged
    assert not by["male"].flagged
    assert table.flagged_groups == ("female",)
    assert table.approval_ratio == pytest.approx(0.5 / 0.9)
    assert table.four_fifths_passed is False
    assert by["female"].relative_share == pytest.approx(0.5 / 0.9)


def test_equal_rates_are_not_flagged() -> None:
    table = _gender({"female": (80, 60, LOW), "male": (120, 90, LOW)})
    assert not table.flagged
    assert table.approval_ratio == 1.0
    assert table.four_fifths_passed is True
    assert [g.relative_share for g in table.groups] == [1.0, 1.0]


def test_lower_approval_explained_by_higher_true_risk_fails_only_the_four_fifths_rule() -> None:
    # half of the women are truly riskier (PD above the cut-off): approving half is justified
    scored, groups, risk = _cases({"female": (100, 50, LOW), "male": (100, 100, LOW)})
    risk[[f"female-{i:04d}" for i in range(50, 100)]] = HIGH
    table = fairness(scored, groups, risk, POLICY, attributes=["gender"]).attribute("gender")
    by = {g.group: g for g in table.groups}
    assert by["female"].justified_approval_rate == 0.5
    assert by["female"].mean_true_risk == pytest.approx((LOW + HIGH) / 2)
    assert table.four_fifths_passed is False  # blind to risk
    assert not table.flagged  # explained by the true risk
    assert table.justified_ratio == 0.5


def test_small_and_unknown_groups_are_shown_but_not_compared() -> None:
    table = _gender(
        {
            "female": (100, 90, LOW),
            "male": (100, 90, LOW),
            UNKNOWN: (50, 0, LOW),
            "small": (5, 0, LOW),
        }
    )
    by = {g.group: g for g in table.groups}
    assert not by[UNKNOWN].compared
    assert not by["small"].compared
    assert by[UNKNOWN].relative_share is None
    assert not by[UNKNOWN].flagged
    assert not table.flagged
    assert table.approval_ratio == 1.0
    assert sum(g.entities for g in table.groups) == 255


def test_shares_and_means_are_those_of_the_rows() -> None:
    scored, groups, risk = _cases({"female": (40, 10, LOW), "male": (60, 30, HIGH)})
    result = fairness(scored, groups, risk, POLICY, attributes=["gender"])
    by = {g.group: g for g in result.attribute("gender").groups}
    assert by["female"].top_grade_share == 0.25  # AA is a class-A grade
    assert by["male"].mean_pd == pytest.approx((30 * LOW + 30 * HIGH) / 60)
    assert by["male"].justified_approval_rate == 0.0
    assert by["male"].fair_share is None
    assert result.entities == 100
    assert result.to_dict()["attributes"]["gender"]["groups"][0]["group"] == "female"


def test_entities_missing_from_groups_or_truth_are_counted_as_unknown() -> None:
    scored, groups, risk = _cases({"female": (40, 20, LOW), "male": (40, 20, LOW)})
    result = fairness(scored, groups.iloc[5:], risk.iloc[:-3], POLICY, attributes=["gender"])
    by = {g.group: g for g in result.attribute("gender").groups}
    assert by[UNKNOWN].entities == 5
    assert by["female"].entities == 35
    assert by["male"].true_risk_entities == 37


def test_realised_labels_rescale_the_model_pd_within_the_group() -> None:
    # the model says 4 % for everyone (above the 3 % cut-off: referred); men default at 4 %,
    # women at 2 %: rescaled to its realised rate, the women's PD is 2 % and would pass
    n = 100
    scored = pd.DataFrame({"uscc": [f"e{i}" for i in range(2 * n)], "pd": 0.04,
                           "decision": "refer", "grade": "B"})  # fmt: skip
    groups = pd.DataFrame({"uscc": scored["uscc"], "gender": ["male"] * n + ["female"] * n})
    labels = np.zeros(2 * n)
    labels[:4] = 1  # 4 of the men
    labels[n : n + 2] = 1  # 2 of the women
    risk = pd.Series(labels, index=scored["uscc"])
    table = fairness(scored, groups, risk, POLICY, kind="label", attributes=["gender"])
    by = {g.group: g for g in table.attribute("gender").groups}
    assert by["female"].mean_true_risk == 0.02
    assert by["female"].justified_approval_rate == 1.0
    assert by["male"].justified_approval_rate == 0.0
    assert table.attribute("gender").justified_ratio == 0.0
    assert table.attribute("gender").four_fifths_passed is None  # nobody approved


def test_refuses_bad_input() -> None:
    scored, groups, risk = _cases({"female": (3, 1, LOW)})
    with pytest.raises(ScoringError, match="unique_uscc"):
        fairness(pd.concat([scored, scored]), groups, risk, POLICY, attributes=["gender"])
    with pytest.raises(ScoringError, match="scored: columns"):
        fairness(scored.drop(columns="grade"), groups, risk, POLICY, attributes=["gender"])
    with pytest.raises(ScoringError, match="groups: columns"):
        fairness(scored, groups, risk, POLICY, attributes=["district"])
    with pytest.raises(ScoringError, match="true_risk: label"):
        fairness(scored, groups, risk, POLICY, kind="label", attributes=["gender"])
    with pytest.raises(ScoringError, match="true_risk: probability"):
        fairness(scored, groups, risk + 2, POLICY, attributes=["gender"])


def test_gender_is_the_parity_of_the_seventeenth_digit() -> None:
    ids = [make_resident_id("330302", dt.date(1980, 1, 1) + dt.timedelta(days=i), i % 1000)
           for i in range(0, 3000, 7)]  # fmt: skip
    expected = [parse_resident_id(code).gender for code in ids]
    assert resident_id_gender(pd.Series(ids)).tolist() == expected
    assert {"male", "female"} <= set(expected)
    broken = [ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1"), None, "", "33030219800101"]
    assert resident_id_gender(pd.Series(broken)).tolist() == [UNKNOWN] * 4


def test_entity_groups_keep_no_personal_identifier() -> None:
    man = make_resident_id("330302", dt.date(1980, 1, 1), 11)
    woman = make_resident_id("330302", dt.date(1980, 1, 1), 12)
    entities = pd.DataFrame({
        "uscc": ["u1", "u2", "u3"], "name": ["张三五金店", "李四商行", "王五"],
        "legal_rep_id": [man, woman, None], "district": ["330302", "999999", None],
        "entity_type": ["个体工商户", "企业", None],
    })  # fmt: skip
    groups = entity_groups(entities)
    assert list(groups.columns) == ["uscc", "gender", "district", "entity_type"]
    assert groups["gender"].tolist() == ["male", "female", UNKNOWN]
    assert groups["district"].tolist() == ["鹿城区 330302", "999999", UNKNOWN]
    assert groups["entity_type"].tolist() == ["个体工商户", "企业", UNKNOWN]
    text = groups.to_string()
    assert man not in text
    assert woman not in text
    assert "张三" not in text
