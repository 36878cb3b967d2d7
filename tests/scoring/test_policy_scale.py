"""The scoring policy file and the PD → score → grade → class scale."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scoring.errors import PolicyError, ScoringError
from scoring.policy import (
    DECISION_REASON_CODES,
    DEFAULT_POLICY_PATH,
    ScoringPolicy,
    load_policy,
    parse_policy,
)
from scoring.scale import classes, grade_index, grades, pd_from_score, score_from_pd

POLICY = load_policy()
RAW: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def _group_index(name: str) -> int:
    return [g["group"] for g in RAW["pre_approval"]["target_groups"]].index(name)


def _group(raw: dict[str, Any], name: str) -> dict[str, Any]:
    group: dict[str, Any] = raw["pre_approval"]["target_groups"][_group_index(name)]
    return group


def _set_punish_flags(raw: dict[str, Any], flags: list[str]) -> None:
    """Replace the punish flags, with a reason text for each (every override needs one)."""
    texts = raw["decision_reasons"]
    for flag in raw["overrides"]["punish_flags"]:
        del texts[f"punish:{flag}"]
    for flag in flags:
        texts[f"punish:{flag}"] = {"zh": flag, "en": flag}
    raw["overrides"]["punish_flags"] = flags


def _broken(change: Any) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


def test_the_packaged_policy_loads_and_is_frozen() -> None:
    assert isinstance(POLICY, ScoringPolicy)
    assert POLICY.grade_names[0] == "AAA"
    assert POLICY.grades[-1].pd_max == 1.0
    with pytest.raises(ValueError, match="frozen"):
        POLICY.score.pdo = 20  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (lambda r: r["score"].update(pdo_typo=20), "score.pdo_typo", "unknown_key"),
        (lambda r: r.update(extra_section={}), "extra_section", "unknown_key"),
        (lambda r: r["grades"][2].update(pd_max=0.001), "policy", "value_error"),
        (lambda r: r["grades"][-1].update(pd_max=0.9), "policy", "value_error"),
        (lambda r: r["classes"][0]["grades"].remove("A"), "policy", "value_error"),
        (lambda r: r["classes"][2].update(sampling_ratio=0.01), "policy", "value_error"),
        (lambda r: r["pre_approval"].update(refer_max_pd=0.01), "pre_approval", "value_error"),
        (lambda r: r["pre_approval"]["grade_rate_discount_bp"].update(D=50), "policy",
         "value_error"),
        (lambda r: r["xinyizu"].update(grades=["AA", "A"]), "policy", "value_error"),
        (lambda r: r["score"].update(pd_floor=0), "score.pd_floor", "greater_than"),
        (lambda r: r["classes"][0].update({"class": "E"}), "classes.0.class", "literal_error"),
        (lambda r: r["pre_approval"].update(decline_on_pboc_status=2), "pre_approval",
         "value_error"),
        (lambda r: r["pre_approval"].update(pboc_refer_symbols=["G", "B"]), "pre_approval",
         "value_error"),
        (lambda r: r["pre_approval"].update(pboc_decline_symbols=["3"]),
         "pre_approval.pboc_decline_symbols.0", "literal_error"),
        (lambda r: r["pre_approval"].update(limit_step=0), "pre_approval.limit_step",
         "greater_than_equal"),
        (lambda r: r["pre_approval"].update(limit_step=1000.5), "pre_approval.limit_step",
         "multiple_of"),
        (lambda r: r["pre_approval"].update(limit_step=200000), "pre_approval", "value_error"),
        (lambda r: _group(r, "other").update(flags=["is_small_micro"]),
         f"pre_approval.target_groups.{_group_index('other')}", "value_error"),
        (lambda r: _group(r, "small_micro").update(flags=[]),
         f"pre_approval.target_groups.{_group_index('small_micro')}", "value_error"),
        (lambda r: _group(r, "small_micro").pop("entity_types"),
         f"pre_approval.target_groups.{_group_index('small_micro')}.entity_types", "missing"),
        (lambda r: r["decision_reasons"].pop("pboc_refer"), "policy", "value_error"),
        (lambda r: r["decision_reasons"].update(pd_maybe={"zh": "也许", "en": "maybe"}),
         "policy", "value_error"),
        (lambda r: r["decision_reasons"]["pd_approve"].update(zh=""),
         "decision_reasons.pd_approve.zh", "string_too_short"),
    ],
)  # fmt: skip
def test_broken_policies_are_refused_naming_the_field(change: Any, field: str, rule: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(_broken(change))
    assert caught.value.field == field
    assert caught.value.rule == rule


def test_override_flags_must_be_view_columns(tmp_path: Path) -> None:
    raw = _broken(lambda r: _set_punish_flags(r, ["gov_on_some_list"]))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="gov_on_some_list") as caught:
        load_policy(path)
    assert caught.value.rule == "unknown_flag"


def test_target_group_flags_must_be_view_columns(tmp_path: Path) -> None:
    raw = _broken(lambda r: _group(r, "small_micro").update(flags=["is_tiny"]))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="is_tiny") as caught:
        load_policy(path)
    assert (caught.value.field, caught.value.rule) == ("pre_approval.target_groups", "unknown_flag")


def test_every_decision_reason_code_has_a_text() -> None:
    assert set(POLICY.decision_reasons) == {*DECISION_REASON_CODES, *POLICY.override_codes}
    assert all(t.zh and t.en for t in POLICY.decision_reasons.values())


@given(st.floats(min_value=1e-6, max_value=1 - 1e-6))
def test_score_and_pd_round_trip_inside_the_clip(pd: float) -> None:
    scale = POLICY.score
    score = score_from_pd([pd], scale)[0]
    if scale.min_score < score < scale.max_score:
        kept = min(max(pd, scale.pd_floor), 1 - scale.pd_floor)
        assert pd_from_score([score], scale)[0] == pytest.approx(kept, rel=1e-9)
    assert scale.min_score <= score <= scale.max_score


def test_score_falls_as_pd_rises_and_spans_the_range() -> None:
    pd = np.linspace(0.0, 1.0, 10_001)
    score = score_from_pd(pd, POLICY.score)
    assert (np.diff(score) <= 0).all()
    inside = (pd > POLICY.score.pd_floor) & (score > POLICY.score.min_score)
    assert (np.diff(score[inside]) < 0).all()
    assert score.min() == POLICY.score.min_score
    assert score.max() > 900


def test_every_pd_falls_in_exactly_one_grade_band() -> None:
    pd = np.concatenate([np.linspace(0, 1, 100_001), [b.pd_max for b in POLICY.grades]])
    index = grade_index(pd, POLICY)
    lower = np.array([0.0] + [b.pd_max for b in POLICY.grades[:-1]])
    upper = np.array([b.pd_max for b in POLICY.grades])
    in_band = (pd[:, None] <= upper) & ((pd[:, None] > lower) | (np.arange(len(upper)) == 0))
    assert (in_band.sum(axis=1) == 1).all()
    assert (np.argmax(in_band, axis=1) == index).all()
    assert (np.diff(grade_index(np.sort(pd), POLICY)) >= 0).all()


def test_grades_map_to_classes_with_rising_inspection() -> None:
    names = np.array(POLICY.grade_names)
    found = classes(names, POLICY)
    assert found.tolist() == sorted(found.tolist())  # A … D as the grades worsen
    ratios = [POLICY.supervision(c).sampling_ratio for c in found]
    assert ratios == sorted(ratios)
    assert grades([0.5, 0.51], POLICY).tolist() == ["C", "D"]
    with pytest.raises(ScoringError, match="ZZ"):
        classes(["ZZ"], POLICY)


@pytest.mark.parametrize("bad", [[-0.1], [1.2], [float("nan")]])
def test_bad_pds_are_refused(bad: list[float]) -> None:
    with pytest.raises(ScoringError) as caught:
        score_from_pd(bad, POLICY.score)
    assert caught.value.field == "pd"
