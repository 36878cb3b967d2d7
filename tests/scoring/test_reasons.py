"""Reason codes: exact TreeSHAP contributions, stable codes, the §4.2 rule, the scorecard."""

from __future__ import annotations

import copy
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from features.view import feature_specs
from models.calibration import CalibratedModel
from scoring.errors import ScoringError
from scoring.policy import load_policy
from scoring.reasons import (
    DEFAULT_REASON_CODES_PATH,
    Reason,
    contributions,
    explain,
    load_reason_codes,
    parse_reason_codes,
    points_lost,
    reason_columns,
    scorecard_reasons,
    select_top,
    top_reason_columns,
    top_reasons,
)

SPECS = feature_specs()
CODES = load_reason_codes()
TOP = load_policy().reasons.top
RAW: dict[str, Any] = yaml.safe_load(DEFAULT_REASON_CODES_PATH.read_text(encoding="utf-8"))
#: registered private loans as such (温州市民间融资管理条例 第十八条): never a reason
POSITIVE_EVIDENCE = {
    "pl_has_registered_loan",
    "pl_loans",
    "pl_amount",
    "pl_months_since_first_registration",
    "pl_loans_good_standing",
    "pl_loans_settled_on_time",
}


def reference(adverse: pd.DataFrame, top: int) -> list[list[tuple[str, float]]]:
    """The reasons by the definition, one row at a time: a plain sort, no partition."""
    out = []
    for _, row in adverse.iterrows():
        ranked = sorted(
            (-value, j, name)
            for j, (name, value) in enumerate(row.items())
            if value > 0 and name not in CODES.never_reasons
        )
        out.append([(name, -negative) for negative, _, name in ranked[:top]])
    return out


def pairs(reasons: list[list[Reason]]) -> list[list[tuple[str, float]]]:
    return [[(r.feature, r.contribution) for r in row] for row in reasons]


# ---- contributions


def test_contributions_add_up_to_the_raw_score(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    contrib, base = contributions(champion, score_matrix)
    assert list(contrib.columns) == list(score_matrix.columns)
    assert contrib.index.equals(score_matrix.index)
    raw = champion.base_model.decision_function(score_matrix)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy() + base, raw, rtol=0, atol=1e-9)
    # calibration is a monotone map of the raw score: what raises it raises the PD
    pd_ = champion.predict_proba(score_matrix)[:, 1][np.argsort(raw, kind="stable")]
    assert np.all(np.diff(pd_) >= -1e-12)


def test_contributions_need_a_tree_model(
    challenger: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    with pytest.raises(ScoringError) as error:
        contributions(challenger, score_matrix.head(3))
    assert (error.value.field, error.value.rule) == ("model", "tree_contributions")


# ---- choosing the reasons


def test_reasons_are_the_largest_contributions_that_raised_the_risk(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    contrib, _ = contributions(champion, score_matrix)
    reasons = top_reasons(contrib, score_matrix, SPECS, TOP)
    assert pairs(reasons) == reference(contrib, TOP)
    assert sum(len(row) == TOP for row in reasons) > len(reasons) / 2
    for row in reasons:
        assert [r.rank for r in row] == list(range(1, len(row) + 1))
        assert all(r.contribution > 0 and r.measure == "log_odds" for r in row)
        assert all(a.contribution >= b.contribution for a, b in pairwise(row))
        assert all(r.code == CODES.code_of(r.feature) for r in row)
    # the flat batch form says the same
    flat = top_reason_columns(contrib, TOP)
    for k in range(TOP):
        codes = [row[k].code if len(row) > k else "-" for row in reasons]
        assert flat[f"reason_{k + 1}_code"].fillna("-").tolist() == codes


def test_equal_inputs_give_equal_reasons(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    rows = score_matrix.head(200)
    assert explain(champion, rows, TOP) == explain(champion, rows, TOP)
    # one entity alone (one thread) and three times inside a batch of 1,500 (two threads)
    single = explain(champion, score_matrix.iloc[[7]], TOP)[0]
    assert len(single) == TOP
    batch = score_matrix.iloc[[7, *range(1_500), 7]]
    reasons = explain(champion, batch, TOP)
    assert reasons[0] == reasons[1 + 7] == reasons[-1] == single
    flat = reason_columns(champion, batch, TOP, chunk_rows=600)  # across chunk boundaries
    assert flat.iloc[0].equals(flat.iloc[1 + 7])
    assert flat.iloc[0].equals(flat.iloc[-1])


def test_batch_reasons_are_the_same_in_any_chunking(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    whole = reason_columns(champion, score_matrix, TOP)
    pd.testing.assert_frame_equal(
        reason_columns(champion, score_matrix, TOP, chunk_rows=700), whole
    )
    assert whole.index.equals(score_matrix.index)
    assert list(whole.columns) == [f"reason_{k}_code" for k in range(1, TOP + 1)] + [
        f"reason_{k}_contribution" for k in range(1, TOP + 1)
    ]
    contrib, _ = contributions(champion, score_matrix)
    pd.testing.assert_frame_equal(top_reason_columns(contrib, TOP), whole)
    empty = reason_columns(champion, score_matrix.iloc[:0], TOP)
    assert list(empty.columns) == list(whole.columns)
    assert empty.empty


def test_ties_go_to_the_earlier_feature() -> None:
    names = ["inq_preloan_6m", "gov_penalties_12m", "pboc_worst_status_24m", "employees"]
    x = pd.DataFrame([[7.0, 1.0, 2.0, 3.0]], columns=names)
    contrib = pd.DataFrame([[0.3, 0.5, 0.3, 0.3]], columns=names)
    reasons = top_reasons(contrib, x, SPECS, 3)[0]
    assert [r.feature for r in reasons] == [
        "gov_penalties_12m",
        "inq_preloan_6m",
        "pboc_worst_status_24m",
    ]
    backwards = names[::-1]
    reasons = top_reasons(contrib[backwards], x[backwards], SPECS, 3)[0]
    assert [r.feature for r in reasons] == [
        "gov_penalties_12m",
        "employees",
        "pboc_worst_status_24m",
    ]


def test_partition_picks_exactly_what_a_full_sort_picks() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(-2, 4, size=(3_000, 12)).astype(float) / 4  # many ties
    eligible = rng.random(12) < 0.8
    for top in (1, 4, 12, 20):
        columns, picked = select_top(values, eligible, top)
        for row, chosen, got in zip(values, columns, picked, strict=True):
            ranked = sorted((-v, j) for j, v in enumerate(row) if v > 0 and eligible[j])[:top]
            expected = [j for _, j in ranked]
            assert chosen.tolist() == expected + [-1] * (top - len(expected))
            assert np.array_equal(got[: len(expected)], row[expected])
            assert np.isnan(got[len(expected) :]).all()


def test_top_must_be_a_positive_integer() -> None:
    contrib = pd.DataFrame({"employees": [0.1]})
    for top in (0, -1, 2.5, True):
        with pytest.raises(ScoringError) as error:
            top_reasons(contrib, contrib, SPECS, top)  # type: ignore[arg-type]
        assert (error.value.field, error.value.rule) == ("top", "positive_integer")


def test_more_of_a_risk_feature_never_lowers_its_contribution(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    """TreeSHAP of a monotone LightGBM model moves with the feature, in its direction.

    LightGBM's ``basic`` monotone method (the champion's) bounds every leaf below a split on
    a constrained feature by that split's midpoint: raising the value can only move a path
    from the left subtree to the right one, so every conditional expectation that TreeSHAP
    averages rises (direction +1) or falls (-1), and with it the feature's contribution.
    Missing values have no order and are left out.
    """
    rows = score_matrix.sample(20, random_state=1)
    blocks, keys = [], []
    for spec in SPECS:
        if spec.direction == 0:
            continue
        seen = score_matrix[spec.name].dropna()
        grid = np.unique([*np.quantile(seen, [0, 0.25, 0.5, 0.75, 0.95, 1]), seen.max() + 1])
        for value in grid:
            blocks.append(rows.assign(**{spec.name: value}))
            keys.append((spec.name, spec.direction, value))
    contrib, _ = contributions(champion, pd.concat(blocks, ignore_index=True))
    own = {}
    for number, (name, direction, _) in enumerate(keys):
        block = contrib[name].to_numpy()[number * len(rows) : (number + 1) * len(rows)]
        own.setdefault(name, []).append(direction * block)
    assert len(own) > 60
    for name, steps in own.items():
        assert np.all(np.diff(np.vstack(steps), axis=0) >= -1e-12), name


# ---- registered private loans (DOMAIN.md §4.2)


def test_a_registered_loan_in_good_standing_is_never_a_reason(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    x = score_matrix
    good = x[
        (x["pl_has_registered_loan"] == 1)
        & (x["pl_loans_good_standing"] >= 1)
        & (x["pl_loans_overdue"] == 0)
        & (x["pl_loans_defaulted_5y"] == 0)
    ]
    assert len(good) >= 5
    contrib, _ = contributions(champion, good)
    barred = sorted(POSITIVE_EVIDENCE)
    # the champion does let some of the loans' facts raise these entities' log-odds (through
    # interactions and the missing values of entities without a loan): the rule has work to do
    assert (contrib[barred] > 0).to_numpy().any()
    everything = top_reasons(contrib, good, SPECS, len(SPECS))
    for (_, row), reasons in zip(contrib.iterrows(), everything, strict=True):
        allowed = {name for name, value in row.items() if value > 0} - CODES.never_reasons
        assert {r.feature for r in reasons} == allowed
    flat = top_reason_columns(contrib, len(SPECS))
    barred_codes = {CODES.code_of(name) for name in barred}
    assert not barred_codes & set(flat.filter(like="_code").stack().dropna())


def test_positive_evidence_is_dropped_and_performance_stays() -> None:
    names = [
        "pl_loans_good_standing",
        "inq_preloan_6m",
        "pl_loans_overdue",
        "pl_months_since_last_overdue",
        "pl_has_registered_loan",
    ]
    x = pd.DataFrame([[2.0, 7.0, 1.0, 3.0, 1.0], [0.0, 0.0, 0.0, np.nan, 0.0]], columns=names)
    contrib = pd.DataFrame([[0.9, 0.4, 0.3, 0.2, 0.1], [0.5, 0.0, 0.0, 0.0, 0.4]], columns=names)
    with_loan, without_loan = top_reasons(contrib, x, SPECS, TOP)
    assert [r.code for r in with_loan] == ["P23", "L08", "L11"]
    assert without_loan == []  # nor is having no registered loan a reason


NOT_REPORTABLE = {"entity_type", "industry", "district", "legal_rep_age_years"}


def test_characteristics_an_entity_cannot_act_on_are_never_reasons(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    assert CODES.never_reasons - CODES.positive_evidence == NOT_REPORTABLE
    contrib, _ = contributions(champion, score_matrix)
    # they do raise some entities' risk in the model: the rule has work to do
    assert (contrib[sorted(NOT_REPORTABLE)] > 0).to_numpy().any()
    flat = top_reason_columns(contrib, len(SPECS))
    given = set(flat.filter(like="_code").stack().dropna())
    assert not {CODES.code_of(name) for name in NOT_REPORTABLE} & given
    # and the reasons that remain are the largest remaining contributions
    row = contrib.iloc[int(np.argmax(contrib["district"].to_numpy()))]
    expected = [name for name, value in row.sort_values(ascending=False, kind="stable").items()
                if value > 0 and name not in CODES.never_reasons][:TOP]  # fmt: skip
    (reasons,) = top_reasons(contrib.loc[[row.name]], score_matrix.loc[[row.name]], SPECS, TOP)
    assert [r.feature for r in reasons] == expected


# ---- texts


def test_reason_texts_show_the_entitys_value() -> None:
    values = {
        "inq_preloan_6m": 7.0,
        "pboc_revolving_utilisation": 0.853,
        "gov_blacklisted": 1.0,
        "pboc_months_since_delinquency": np.nan,
        "gov_tax_grade": "C",
        "gov_penalty_amount_36m": 125_000.0,
    }
    x = pd.DataFrame([values]).astype({"gov_tax_grade": "string"})
    contrib = pd.DataFrame([np.linspace(0.6, 0.1, len(values))], columns=list(values))
    reasons = top_reasons(contrib, x, SPECS, len(values))[0]
    assert [r.zh for r in reasons] == [
        "近6个月贷前查询次数：7",
        "循环授信使用率：85.3%",
        "列入严重失信主体名单：是",
        "最近一次逾期至今月数：无记录",
        "最近纳税信用级别：C",
        "近36个月罚没金额：125,000",
    ]
    assert reasons[0].en == "pre-loan inquiries, last 6 months: 7"
    assert [r.value for r in reasons[2:5]] == [1.0, None, "C"]


# ---- the code table


def test_every_feature_has_exactly_one_stable_code() -> None:
    features = [entry.feature for entry in CODES.codes]
    codes = [entry.code for entry in CODES.codes]
    assert sorted(features) == sorted(spec.name for spec in SPECS)
    assert len(set(codes)) == len(codes) == len(SPECS)
    letter = {"entity": "E", "government": "G", "pboc": "P", "private_lending": "L"}
    for spec in SPECS:
        assert CODES.code_of(spec.name)[0] == letter[spec.source]
    assert CODES.positive_evidence == POSITIVE_EVIDENCE
    # codes never change meaning: a few pinned
    assert [CODES.code_of(f) for f in ("inq_preloan_6m", "pl_loans", "gov_blacklisted")] == [
        "P23",
        "L02",
        "G10",
    ]


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


def _entry(raw: dict[str, Any], feature: str) -> dict[str, Any]:
    return next(e for e in raw["codes"] if e["feature"] == feature)


def _index(feature: str) -> int:
    return next(i for i, e in enumerate(RAW["codes"]) if e["feature"] == feature)


N = len(RAW["codes"])


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (
            lambda r: r["codes"].append({"code": "G30", "feature": "gov_not_a_feature"}),
            f"codes.{N}.feature",
            "known_feature",
        ),
        (lambda r: r["codes"][1].update(code="E01"), "codes.1.code", "unique_code"),
        (
            lambda r: r.update(retired=[{"code": "P23", "feature": "old", "retired_in": "1"}]),
            "retired.0.code",
            "unique_code",
        ),
        (
            lambda r: r["codes"].append({"code": "E11", "feature": "employees"}),
            f"codes.{N}.feature",
            "one_code_per_feature",
        ),
        (lambda r: r["codes"].pop(), "codes", "every_feature"),
        (
            lambda r: _entry(r, "pl_share_registered_late").update(code="L17"),
            "codes",
            "append_only",
        ),
        (lambda r: r["codes"][0].update(code="P31"), "codes.0.code", "source_prefix"),
        (
            lambda r: _entry(r, "pl_loans_overdue").update(positive_evidence=True),
            f"codes.{_index('pl_loans_overdue')}.positive_evidence",
            "direction",
        ),
        (
            lambda r: _entry(r, "pl_amount").pop("positive_evidence"),
            f"codes.{_index('pl_amount')}.positive_evidence",
            "declared",
        ),
        (
            lambda r: _entry(r, "inq_preloan_6m").update(reportable=False),
            f"codes.{_index('inq_preloan_6m')}.reportable",
            "direction",
        ),
        (lambda r: r["codes"][0].update(code="e01"), "codes.0.code", "string_pattern_mismatch"),
        (lambda r: r.update(reason_text="x"), "reason_text", "unknown_key"),
        (
            lambda r: r["texts"]["template"].update(zh="{label}"),
            "texts.template.zh",
            "placeholders",
        ),
    ],
)
def test_the_loader_refuses_a_broken_table(
    change: Callable[[dict[str, Any]], None], field: str, rule: str
) -> None:
    with pytest.raises(ScoringError) as error:
        parse_reason_codes(_broken(change), SPECS)
    assert (error.value.field, error.value.rule) == (field, rule)


def test_a_retired_code_keeps_its_number() -> None:
    def retire_last(raw: dict[str, Any]) -> None:
        last = raw["codes"].pop()
        raw["retired"] = [{"code": last["code"], "feature": last["feature"], "retired_in": "x"}]

    specs = [spec for spec in SPECS if spec.name != RAW["codes"][-1]["feature"]]
    table = parse_reason_codes(_broken(retire_last), specs)
    assert table.retired[0].code == RAW["codes"][-1]["code"]


def test_an_unreadable_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScoringError) as error:
        load_reason_codes(tmp_path / "missing.yaml")
    assert (error.value.field, error.value.rule) == ("reason_codes", "readable")


# ---- the challenger scorecard


def test_scorecard_reasons_are_the_bins_that_cost_the_most_points(
    challenger: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    rows = score_matrix.head(300)
    lost = points_lost(challenger, rows)
    card = challenger.base_model
    table = card.points_table()
    best = table[table["count"] > 0].groupby("variable")["points"].max()
    points = card.points(rows)
    np.testing.assert_allclose(lost, np.maximum(best[points.columns].to_numpy() - points, 0))
    reasons = scorecard_reasons(challenger, rows, TOP)
    assert pairs(reasons) == reference(lost, TOP)
    assert all(r.measure == "points" for row in reasons for r in row)
    assert sum(len(row) == TOP for row in reasons) > len(rows) / 2


def test_scorecard_reasons_need_a_scorecard(
    champion: CalibratedModel, score_matrix: pd.DataFrame
) -> None:
    with pytest.raises(ScoringError) as error:
        scorecard_reasons(champion, score_matrix.head(3), TOP)
    assert (error.value.field, error.value.rule) == ("model", "scorecard")
