"""Decisions: overrides (联合奖惩), 信易贷 pre-approval with the 双查询, 信易批 and 信易租.

Expected limits and discounts are derived from the packaged policy's values, never typed in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.decisions import (
    COLUMNS,
    DECISIONS,
    PbocReport,
    decide,
    reason_text,
)
from scoring.errors import ScoringError
from scoring.policy import TARGET_GROUPS, load_policy
from scoring.scale import grades, score_from_pd

POLICY = load_policy()
PRE = POLICY.pre_approval
OVER = POLICY.overrides
PUNISH_CLASS = OVER.punish_class
#: PDs at the policy's landmarks: full limit, half-way down the share, the approval cut-off,
#: inside the referral band, above it
FULL_PD = PRE.approve_full_limit_pd
MID_PD = (PRE.approve_full_limit_pd + PRE.approve_max_pd) / 2
EDGE_PD = PRE.approve_max_pd
REFER_PD = (PRE.approve_max_pd + PRE.refer_max_pd) / 2
DECLINE_PD = (PRE.refer_max_pd + 1) / 2
CLEAN_24 = "N" * 24
FLAGS = ("is_agricultural", "is_young_entrepreneur", "is_small_micro",
         *OVER.punish_flags, *OVER.reward_flags)  # fmt: skip
ENTITY_TYPES = ("企业", "个体工商户", "农民专业合作社")


def _row(**fields: Any) -> dict[str, Any]:
    """A view row: a clean enterprise unless ``fields`` say otherwise."""
    unknown = set(fields) - {"uscc", "entity_type", *FLAGS}
    assert not unknown, unknown
    return {"uscc": "91330300000000000X", "entity_type": "企业", **dict.fromkeys(FLAGS, 0),
            **fields}  # fmt: skip


def _decide_one(pd: float, report: PbocReport | None = None, /, **row: Any) -> pandas.Series:
    frame = pandas.DataFrame([_row(**row)])
    reports = {frame.loc[0, "uscc"]: report} if report is not None else None
    return decide(frame, [pd], POLICY, reports=reports).iloc[0]


def _report(*statuses: str) -> PbocReport:
    return PbocReport.parse(
        {"accounts": [{"account_id": str(i), "status_24m": s} for i, s in enumerate(statuses)]}
    )


def _expected_decision(pd: float) -> str:
    if pd <= PRE.approve_max_pd:
        return "approve"
    return "refer" if pd <= PRE.refer_max_pd else "decline"


def _expected_limit(group: str, pd: float, decision: str) -> int:
    if decision == "decline":
        return 0
    if decision == "refer":
        share = PRE.min_limit_share
    elif pd <= PRE.approve_full_limit_pd:
        share = 1.0
    else:
        fall = (pd - PRE.approve_full_limit_pd) / (PRE.approve_max_pd - PRE.approve_full_limit_pd)
        share = 1.0 - (1.0 - PRE.min_limit_share) * fall
    steps = math.floor(round(PRE.group(group).max_limit * share / PRE.limit_step, 6))
    return int(steps * PRE.limit_step)


def _expected_discount(group: str, pd: float, decision: str, rewarded: bool = False) -> float:
    if decision == "decline":
        return 0.0
    grade = str(grades([pd], POLICY)[0])
    reward = OVER.reward_rate_discount_bp if rewarded else 0.0
    return PRE.grade_rate_discount_bp[grade] + PRE.group(group).rate_discount_bp + reward


# ---- target groups, decisions, limits and discounts ------------------------------------


@pytest.mark.parametrize(
    ("row", "group"),
    [
        ({"entity_type": "个体工商户"}, "individual_business"),
        ({"entity_type": "个体工商户", "is_small_micro": 1}, "individual_business"),
        ({"is_agricultural": 1}, "agricultural"),
        ({"entity_type": "农民专业合作社"}, "agricultural"),
        ({"entity_type": "个体工商户", "is_agricultural": 1, "is_young_entrepreneur": 1},
         "agricultural"),
        ({"entity_type": "个体工商户", "is_young_entrepreneur": 1}, "young_entrepreneur"),
        ({"is_young_entrepreneur": 1, "is_small_micro": 1}, "young_entrepreneur"),
        ({"is_small_micro": 1}, "small_micro"),
        ({}, "other"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("pd", [FULL_PD / 2, FULL_PD, MID_PD, EDGE_PD, REFER_PD, DECLINE_PD])
def test_each_target_group_gets_its_decision_limit_and_discount(
    row: dict[str, Any], group: str, pd: float
) -> None:
    out = _decide_one(pd, **row)
    decision = _expected_decision(pd)
    assert out["target_group"] == group
    assert out["decision"] == decision
    assert out["limit"] == _expected_limit(group, pd, decision)
    assert out["rate_discount_bp"] == pytest.approx(_expected_discount(group, pd, decision))
    assert out["limit"] % PRE.limit_step == 0
    assert out["overrides"] == ()
    assert "pboc_absent" in out["decision_reasons"]


def test_limits_span_the_group_maximum_down_to_the_floor_share() -> None:
    for group in TARGET_GROUPS:
        top = PRE.group(group).max_limit
        floor = math.floor(round(top * PRE.min_limit_share / PRE.limit_step, 6)) * PRE.limit_step
        assert _expected_limit(group, FULL_PD, "approve") == top
        assert _expected_limit(group, EDGE_PD, "approve") == floor
        assert _expected_limit(group, REFER_PD, "refer") == floor
    frame = pandas.DataFrame([_row(entity_type="个体工商户")] * 3)
    out = decide(frame, [FULL_PD, EDGE_PD, REFER_PD], POLICY)
    top = PRE.group("individual_business").max_limit
    assert out["limit"].tolist()[0] == top
    assert out["limit"].tolist()[1] == out["limit"].tolist()[2] < top


def test_score_grade_and_class_follow_the_pd_without_overrides() -> None:
    pd = np.array([0.0005, 0.01, 0.05, 0.2, 0.9])
    out = decide(pandas.DataFrame([_row()] * len(pd)), pd, POLICY)
    assert out["score"].tolist() == np.rint(score_from_pd(pd, POLICY.score)).astype(int).tolist()
    assert out["grade"].astype(str).tolist() == grades(pd, POLICY).tolist()
    expected = [POLICY.class_of_grade[g] for g in grades(pd, POLICY)]
    assert out["supervision_class"].astype(str).tolist() == expected
    ratios = [POLICY.supervision(c).sampling_ratio for c in expected]
    assert out["sampling_ratio"].tolist() == ratios
    per_year = [POLICY.supervision(c).inspections_per_year for c in expected]
    assert out["inspections_per_year"].tolist() == per_year


def test_the_result_keeps_the_frame_order_index_and_policy_version() -> None:
    frame = pandas.DataFrame([_row(), _row(entity_type="个体工商户")], index=[7, 3])
    out = decide(frame, [DECLINE_PD, FULL_PD], POLICY)
    assert tuple(out.columns) == COLUMNS
    assert out.index.tolist() == [7, 3]
    assert out["decision"].tolist() == ["decline", "approve"]
    assert out.attrs["policy_version"] == POLICY.version
    assert list(out["decision"].cat.categories) == list(DECISIONS)
    assert out["limit"].dtype == np.int64
    assert out["xinyipi"].dtype == np.bool_
    empty = decide(frame.iloc[:0], [], POLICY)
    assert tuple(empty.columns) == COLUMNS
    assert len(empty) == 0


# ---- 联合奖惩 overrides ---------------------------------------------------------------------


@pytest.mark.parametrize("flags", [{f: 1} for f in OVER.punish_flags] + [
    dict.fromkeys(OVER.punish_flags, 1)])  # fmt: skip
@pytest.mark.parametrize("red", [0, 1])
def test_a_punishment_beats_any_pd(flags: dict[str, int], red: int) -> None:
    reward = dict.fromkeys(OVER.reward_flags, red)
    out = _decide_one(0.0005, entity_type="个体工商户", **flags, **reward)
    codes = tuple(f"punish:{f}" for f in OVER.punish_flags if flags.get(f))
    assert out["grade"] == grades([0.0005], POLICY)[0]  # the grade stays the PD's
    assert out["score"] == round(float(score_from_pd([0.0005], POLICY.score)[0]))
    assert out["supervision_class"] == PUNISH_CLASS
    assert out["sampling_ratio"] == POLICY.supervision(PUNISH_CLASS).sampling_ratio
    assert out["decision"] == "decline"
    assert out["limit"] == 0
    assert out["rate_discount_bp"] == 0
    assert not out["xinyipi"]
    assert not out["xinyizu"]
    assert out["overrides"] == codes  # no reward code: the reward is not applied
    assert out["override_reasons"] == tuple(POLICY.decision_reasons[c].zh for c in codes)
    assert out["decision_reasons"][: len(codes)] == codes
    assert ("reward_withheld" in out["decision_reasons"]) == bool(red)


def test_the_dishonest_debtor_reason_reads_in_chinese_and_english() -> None:
    out = _decide_one(0.0005, gov_dishonest_debtor=1)
    text = reason_text(out["decision_reasons"][0], POLICY)
    assert "失信被执行人" in text.zh
    assert "dishonest" in text.en


def _grade_band(grade: str) -> tuple[float, float]:
    names = POLICY.grade_names
    index = names.index(grade)
    low = 0.0 if index == 0 else POLICY.grades[index - 1].pd_max
    return low, POLICY.grades[index].pd_max


def test_a_red_list_rewards_whatever_the_grade_short_of_class_d() -> None:
    # the worst grade that is in neither list and not in the punish class
    eligible = {*POLICY.xinyipi.grades, *POLICY.xinyizu.grades}
    grade = [g for g in POLICY.grade_names
             if g not in eligible and POLICY.class_of_grade[g] < PUNISH_CLASS][-1]  # fmt: skip
    low, high = _grade_band(grade)
    pd = (low + high) / 2
    decision = _expected_decision(pd)
    plain = _decide_one(pd, is_small_micro=1)
    red = _decide_one(pd, is_small_micro=1, **dict.fromkeys(OVER.reward_flags, 1))
    assert not plain["xinyipi"]
    assert not plain["xinyizu"]
    assert red["xinyipi"] == OVER.reward_xinyipi
    assert red["xinyizu"] == OVER.reward_xinyizu
    assert red["decision"] == plain["decision"] == decision
    assert red["limit"] == plain["limit"]
    assert red["rate_discount_bp"] == pytest.approx(
        _expected_discount("small_micro", pd, decision, rewarded=decision != "decline")
    )
    codes = tuple(f"reward:{f}" for f in OVER.reward_flags)
    assert red["overrides"] == codes
    assert red["override_reasons"] == tuple(POLICY.decision_reasons[c].zh for c in codes)
    assert red["supervision_class"] == plain["supervision_class"]  # rewards never move class


def test_a_red_list_gives_nothing_in_class_d() -> None:
    grade = next(g for g in POLICY.grade_names if POLICY.class_of_grade[g] == PUNISH_CLASS)
    low, high = _grade_band(grade)
    out = _decide_one((low + high) / 2, **dict.fromkeys(OVER.reward_flags, 1))
    assert out["supervision_class"] == PUNISH_CLASS
    assert not out["xinyipi"]
    assert not out["xinyizu"]
    assert out["overrides"] == ()
    assert "reward_withheld" in out["decision_reasons"]


def test_a_red_list_adds_its_discount_to_an_approval() -> None:
    red = dict.fromkeys(OVER.reward_flags, 1)
    out = _decide_one(FULL_PD, entity_type="个体工商户", **red)
    assert out["decision"] == "approve"
    assert out["rate_discount_bp"] == pytest.approx(
        _expected_discount("individual_business", FULL_PD, "approve", rewarded=True)
    )
    assert out["decision_reasons"][-1] == f"reward:{OVER.reward_flags[0]}"


# ---- the 双查询: a PBOC report can only make the decision worse -----------------------------


def _with_status(symbol: str) -> str:
    return "N" * 12 + symbol + "N" * 11


@pytest.mark.parametrize(
    ("status", "finding"),
    [
        (CLEAN_24, "pboc_clean"),
        (_with_status(str(PRE.refer_on_pboc_status - 1)), "pboc_clean"),
        (_with_status(str(PRE.refer_on_pboc_status)), "pboc_refer"),
        (_with_status(str(PRE.decline_on_pboc_status)), "pboc_decline"),
        (_with_status("7"), "pboc_decline"),
        *((_with_status(s), "pboc_refer") for s in PRE.pboc_refer_symbols),
        *((_with_status(s), "pboc_decline") for s in PRE.pboc_decline_symbols),
        ("/" * 10 + "*#MCA" + "N" * 9, "pboc_clean"),
    ],
)  # fmt: skip
def test_a_pboc_report_refers_or_declines(status: str, finding: str) -> None:
    worst = {"pboc_clean": "approve", "pboc_refer": "refer", "pboc_decline": "decline"}[finding]
    out = _decide_one(FULL_PD, _report(CLEAN_24, status))
    assert out["decision"] == worst
    assert finding in out["decision_reasons"]
    assert out["limit"] == _expected_limit("other", FULL_PD, worst)
    if worst != "approve":  # the deciding finding comes first
        assert out["decision_reasons"][0] == finding


def test_a_report_never_rescues_a_declined_pd() -> None:
    out = _decide_one(DECLINE_PD, _report(CLEAN_24))
    assert out["decision"] == "decline"
    assert out["decision_reasons"] == ("pd_decline", "pboc_clean")


def test_reports_are_matched_by_uscc_in_small_and_large_frames() -> None:
    rows = [_row(uscc=f"U{i:04d}") for i in range(600)]
    reports = {f"U{i:04d}": _report(_with_status("B")) for i in range(0, 600, 3)}
    reports["not-in-the-frame"] = _report(_with_status("B"))
    pd = np.full(600, FULL_PD)
    batch = decide(pandas.DataFrame(rows), pd, POLICY, reports=reports)
    assert batch["decision"].tolist() == ["decline", "approve", "approve"] * 200
    small = decide(pandas.DataFrame(rows[:9]), pd[:9], POLICY, reports=reports)
    assert small["decision"].tolist() == batch["decision"].tolist()[:9]


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ({"accounts": [{"account_id": "1", "status_24m": "N" * 23}]},
         "accounts.0.status_24m", "length"),
        ({"accounts": [{"account_id": "1", "status_24m": "N" * 25}]},
         "accounts.0.status_24m", "length"),
        ({"accounts": [{"account_id": "1", "status_24m": CLEAN_24},
                       {"account_id": "2", "status_24m": "N" * 23 + "X"}]},
         "accounts.1.status_24m", "symbol"),
        ({"accounts": [{"account_id": "1", "status_24m": "n" * 24}]},
         "accounts.0.status_24m", "symbol"),
        ({"accounts": [{"account_id": "1", "status_24m": "N" * 23 + "8"}]},
         "accounts.0.status_24m", "symbol"),
        ({"accounts": [{"account_id": "1", "status_24m": CLEAN_24}] * 2}, "accounts", "unique"),
        ({"accounts": [{"account_id": "", "status_24m": CLEAN_24}]},
         "accounts.0.account_id", "string_too_short"),
        ({"accounts": [{"account_id": "1", "status_24m": CLEAN_24, "note": "x"}]},
         "accounts.0.note", "unknown_key"),
        ({}, "accounts", "missing"),
    ],
)  # fmt: skip
def test_bad_reports_are_refused_naming_the_field_and_rule(
    raw: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ScoringError) as caught:
        PbocReport.parse(raw)
    assert (caught.value.field, caught.value.rule) == (field, rule)


def test_reports_must_be_report_objects() -> None:
    frame = pandas.DataFrame([_row(uscc="U1")])
    with pytest.raises(ScoringError) as caught:
        decide(frame, [FULL_PD], POLICY, reports={"U1": {"accounts": []}})  # type: ignore[dict-item]
    assert caught.value.field == "reports.U1"


# ---- errors --------------------------------------------------------------------------------


def test_missing_columns_and_bad_pds_are_refused() -> None:
    frame = pandas.DataFrame([_row()])
    with pytest.raises(ScoringError) as caught:
        decide(frame.drop(columns=["gov_dishonest_debtor"]), [FULL_PD], POLICY)
    assert (caught.value.field, caught.value.rule) == ("gov_dishonest_debtor", "required_column")
    with pytest.raises(ScoringError) as caught:
        decide(frame.drop(columns=["uscc"]), [FULL_PD], POLICY, reports={"x": _report()})
    assert caught.value.field == "uscc"
    with pytest.raises(ScoringError) as caught:
        decide(frame, [FULL_PD, FULL_PD], POLICY)
    assert (caught.value.field, caught.value.rule) == ("pd", "length")
    with pytest.raises(ScoringError) as caught:
        decide(frame, [1.5], POLICY)
    assert (caught.value.field, caught.value.rule) == ("pd", "probability")
    with pytest.raises(ScoringError) as caught:
        decide(frame.assign(gov_red_listed="yes"), [FULL_PD], POLICY)
    assert (caught.value.field, caught.value.rule) == ("gov_red_listed", "flag")
    with pytest.raises(ScoringError) as caught:
        reason_text("no_such_code", POLICY)
    assert caught.value.field == "reason_code"


def test_flags_as_booleans_floats_or_nullable_integers_decide_alike() -> None:
    frame = pandas.DataFrame([_row(gov_blacklisted=1), _row(), _row(gov_red_listed=1)])
    pd = [FULL_PD, FULL_PD, FULL_PD]
    base = decide(frame, pd, POLICY)
    for dtype in (bool, float, "Int64"):
        other = decide(frame.astype(dict.fromkeys(FLAGS, dtype)), pd, POLICY)
        pandas.testing.assert_frame_equal(other, base)
    missing = frame.astype(dict.fromkeys(FLAGS, "Int64"))
    missing.loc[1, "gov_blacklisted"] = pandas.NA  # missing counts as not listed (fill 0)
    pandas.testing.assert_frame_equal(decide(missing, pd, POLICY), base)


# ---- properties ----------------------------------------------------------------------------

_flag_values = st.fixed_dictionaries({f: st.integers(0, 1) for f in FLAGS})
_rows = st.builds(lambda flags, kind: _row(entity_type=kind, **flags), _flag_values,
                  st.sampled_from(ENTITY_TYPES))  # fmt: skip
_pds = st.floats(0.0, 1.0, allow_nan=False)
_status = st.text(alphabet="N1234567*#/CGDZBMA", min_size=24, max_size=24)
_reports = st.lists(_status, min_size=0, max_size=3).map(lambda s: _report(*s))
_LEVEL = {name: i for i, name in enumerate(DECISIONS)}


def _not_better(worse: pandas.DataFrame, better: pandas.DataFrame) -> None:
    levels = worse["decision"].map(_LEVEL).to_numpy(int)
    assert (levels >= better["decision"].map(_LEVEL).to_numpy(int)).all()
    assert (worse["limit"].to_numpy() <= better["limit"].to_numpy()).all()
    assert (worse["rate_discount_bp"].to_numpy() <= better["rate_discount_bp"].to_numpy()).all()
    assert not (worse["xinyipi"].to_numpy() & ~better["xinyipi"].to_numpy()).any()
    assert not (worse["xinyizu"].to_numpy() & ~better["xinyizu"].to_numpy()).any()


@settings(max_examples=60)
@given(st.lists(st.tuples(_rows, _pds, _reports), min_size=1, max_size=12))
def test_adding_a_pboc_report_never_improves_the_decision(
    cases: list[tuple[dict[str, Any], float, PbocReport]],
) -> None:
    frame = pandas.DataFrame([{**row, "uscc": f"U{i}"} for i, (row, _, _) in enumerate(cases)])
    pd = [p for _, p, _ in cases]
    without = decide(frame, pd, POLICY)
    reports = {f"U{i}": report for i, (_, _, report) in enumerate(cases)}
    with_report = decide(frame, pd, POLICY, reports=reports)
    _not_better(with_report, without)
    for column in ("score", "grade", "supervision_class", "xinyipi", "xinyizu", "overrides"):
        assert with_report[column].tolist() == without[column].tolist()


@settings(max_examples=60)
@given(st.lists(st.tuples(_rows, _pds, _pds, st.none() | _reports), min_size=1, max_size=12))
def test_a_higher_pd_never_gets_a_better_decision(
    cases: list[tuple[dict[str, Any], float, float, PbocReport | None]],
) -> None:
    frame = pandas.DataFrame([{**row, "uscc": f"U{i}"} for i, (row, *_) in enumerate(cases)])
    low = [min(a, b) for _, a, b, _ in cases]
    high = [max(a, b) for _, a, b, _ in cases]
    reports = {f"U{i}": r for i, (*_, r) in enumerate(cases) if r is not None}
    at_low = decide(frame, low, POLICY, reports=reports)
    at_high = decide(frame, high, POLICY, reports=reports)
    _not_better(at_high, at_low)
    assert (at_high["score"].to_numpy() <= at_low["score"].to_numpy()).all()
    assert (at_high["supervision_class"].cat.codes >= at_low["supervision_class"].cat.codes).all()


@pytest.mark.parametrize("row", [_row(entity_type=k, **{f: 1}) for k in ENTITY_TYPES
                                 for f in ("is_small_micro", *OVER.reward_flags)])  # fmt: skip
def test_decisions_are_monotone_over_a_fine_pd_grid(row: dict[str, Any]) -> None:
    landmarks = [*(b.pd_max for b in POLICY.grades), FULL_PD, EDGE_PD, REFER_PD]
    pd = np.sort(np.concatenate([np.linspace(0, 1, 20_001), landmarks]))
    out = decide(pandas.DataFrame([row] * len(pd)), pd, POLICY)
    assert (np.diff(out["decision"].cat.codes.to_numpy()) >= 0).all()
    assert (np.diff(out["limit"].to_numpy()) <= 0).all()
    assert (np.diff(out["rate_discount_bp"].to_numpy()) <= 0).all()
    for column in ("xinyipi", "xinyizu"):
        assert (np.diff(out[column].to_numpy().astype(int)) <= 0).all()


# ---- batch ---------------------------------------------------------------------------------


def _population(n: int, seed: int = 7) -> tuple[pandas.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pandas.DataFrame(
        {
            "entity_type": rng.choice(ENTITY_TYPES, n, p=[0.27, 0.72, 0.01]),
            **{f: (rng.random(n) < 0.05).astype(np.int64) for f in FLAGS},
        }
    )
    return frame, rng.beta(0.5, 20.0, n)


def test_a_batch_of_a_million_rows_runs_and_matches_single_rows() -> None:
    frame, pd = _population(1_000_000)
    out = decide(frame, pd, POLICY)
    assert len(out) == len(frame)
    assert tuple(out.columns) == COLUMNS
    assert set(out["decision"].unique()) == set(DECISIONS)
    punished = frame[list(OVER.punish_flags)].to_numpy().any(axis=1)
    assert (out["decision"].to_numpy()[punished] == "decline").all()
    assert (out["supervision_class"].to_numpy()[punished] == PUNISH_CLASS).all()
    codes = {code for reasons in out["decision_reasons"].unique() for code in reasons}
    assert codes <= set(POLICY.decision_reasons)
    sample = np.random.default_rng(1).choice(len(frame), 40, replace=False)
    for i in sample:  # the single-entity path (the API's) agrees with the batch
        one = decide(frame.iloc[[i]], pd[[i]], POLICY)
        pandas.testing.assert_frame_equal(one, out.iloc[[i]])
