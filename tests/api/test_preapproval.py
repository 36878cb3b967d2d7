"""信易贷 pre-approval (双查询) and 信易批 / 信易租 eligibility, on both databases.

Cases are real entities of the shared small warehouse, picked by what the snapshot says
about them; expected limits and discounts are worked out here from the policy's values.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.tables import EntityRescore, InquiryRecord, QueryLog
from api.security import subject_ref
from api.services.consent import PURPOSES, Purpose
from api.state import Services
from scoring.policy import ScoringPolicy
from tests.api.conftest import Keys, Workspace, consent_body

GROUPS = ("individual_business", "agricultural", "young_entrepreneur", "small_micro")


def entities(workspace: Workspace) -> pd.DataFrame:
    """Every scored entity: its snapshot row, its view flags and its register facts."""
    scores = workspace.snapshot.scores.to_pandas()
    for column in ("grade", "supervision_class", "target_group", "decision"):
        scores[column] = scores[column].astype(str)
    view = workspace.snapshot.view
    assert view is not None
    flags = view.select(
        [
            "uscc",
            "gov_blacklisted",
            "gov_dishonest_debtor",
            "gov_red_listed",
            "is_agricultural",
            "entity_type",
        ]
    ).to_pandas()
    merged = scores.merge(flags, on="uscc", how="left", validate="one_to_one")
    merged["natural_person"] = [
        workspace.directory.entities[u].natural_person for u in merged["uscc"]
    ]
    merged["punished"] = [any(o.startswith("punish:") for o in v) for v in merged["overrides"]]
    merged["rewarded"] = [any(o.startswith("reward:") for o in v) for v in merged["overrides"]]
    return merged


def pick_approved(
    workspace: Workspace, policy: ScoringPolicy, group: str, **where: Any
) -> pd.Series:
    """An approved, unpunished entity of ``group``, preferably on the falling part of the
    limit curve (PD between the full-limit cut-off and the approval cut-off)."""
    frame = entities(workspace)
    mask = (frame["target_group"] == group) & (frame["decision"] == "approve") & ~frame["punished"]
    for column, value in where.items():
        mask &= frame[column] == value
    found = frame[mask]
    assert len(found), f"the small warehouse has no approved entity of {group} {where}"
    sloped = found[found["pd"] > policy.pre_approval.approve_full_limit_pd]
    return (sloped if len(sloped) else found).sort_values("uscc").iloc[0]


def expected_terms(
    policy: ScoringPolicy, group: str, pd_value: float, grade: str, decision: str, rewarded: bool
) -> tuple[int, float]:
    """The limit and rate discount the policy gives, worked out by hand."""
    rules = policy.pre_approval
    terms = rules.group(group)
    if decision == "decline":
        return 0, 0.0
    if decision == "refer":
        share = rules.min_limit_share
    elif pd_value <= rules.approve_full_limit_pd:
        share = 1.0
    else:
        fall = (pd_value - rules.approve_full_limit_pd) / (
            rules.approve_max_pd - rules.approve_full_limit_pd
        )
        share = 1.0 - (1.0 - rules.min_limit_share) * fall
    limit = math.floor(terms.max_limit * share / rules.limit_step + 1e-9) * rules.limit_step
    discount = rules.grade_rate_discount_bp[grade] + terms.rate_discount_bp
    if rewarded:
        discount += policy.overrides.reward_rate_discount_bp
    return int(limit), discount


def consent(client: TestClient, keys: Keys, resident_id: str) -> None:
    recorded = client.post("/v1/consents", json=consent_body(resident_id), headers=keys.underwriter)
    assert recorded.status_code == 201, recorded.text


def preapprove(client: TestClient, keys: Keys, uscc: str, **body: Any) -> Any:
    return client.post("/v1/preapprovals", json={"uscc": uscc, **body}, headers=keys.underwriter)


def history(symbol: str) -> dict[str, Any]:
    """A one-account PBOC report: paid on time for 23 months and ``symbol`` once."""
    return {"accounts": [{"account_id": "LN-1", "status_24m": "N" * 12 + symbol + "N" * 11}]}


def add_rescore(services: Services, workspace: Workspace, uscc: str, **changes: Any) -> None:
    """The entity scored again (as after a repair): its snapshot row with ``changes``."""
    row = workspace.snapshot.score_row(uscc)
    result = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
    result.update(changes)
    with services.database.session() as session:
        session.add(
            EntityRescore(
                uscc=uscc,
                snapshot_id=services.snapshot_id,
                cause="repair:test",
                model_version="1",
                policy_version=services.policy.version,
                result=result,
            )
        )


@pytest.mark.parametrize("group", GROUPS)
def test_each_target_group_gets_its_limit_and_discount(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services, group: str
) -> None:
    policy = services.policy
    case = pick_approved(workspace, policy, group)
    facts = workspace.directory.entities[case["uscc"]]
    if facts.natural_person:
        consent(client, keys, facts.legal_rep_id)
    response = preapprove(client, keys, case["uscc"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target_group"]["group"] == group
    assert body["target_group"]["max_limit"] == policy.pre_approval.group(group).max_limit
    limit, discount = expected_terms(
        policy, group, case["pd"], case["grade"], "approve", bool(case["rewarded"])
    )
    assert (body["decision"], body["limit"], body["rate_discount_bp"]) == (
        "approve",
        limit,
        pytest.approx(discount),
    )
    codes = [r["code"] for r in body["decision_reasons"]]
    assert codes[:2] == ["pd_approve", "pboc_absent"]
    assert all(r["zh"] and r["en"] for r in body["decision_reasons"])
    assert body["pboc"] is None
    assert (body["score"], body["grade"]) == (case["score"], case["grade"])
    stored = [case[f"reason_{k}_code"] for k in range(1, 5) if case[f"reason_{k}_code"]]
    assert [r["code"] for r in body["reasons"]] == stored
    # with the operator's consent an underwriter sees the person unmasked
    assert body["identity"]["masked"] is not facts.natural_person


def test_individual_business_of_the_agricultural_group(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    """三农 comes before 个体工商户: an agricultural 个体工商户 gets the 三农 terms."""
    frame = entities(workspace)
    farming = frame[frame["natural_person"] & (frame["is_agricultural"] > 0) & ~frame["punished"]]
    assert len(farming), "the small warehouse has no agricultural 个体工商户"
    case = farming.sort_values("uscc").iloc[0]
    consent(client, keys, workspace.directory.entities[case["uscc"]].legal_rep_id)
    body = preapprove(client, keys, case["uscc"]).json()
    assert body["target_group"]["group"] == "agricultural"
    limit, discount = expected_terms(
        services.policy,
        "agricultural",
        case["pd"],
        case["grade"],
        body["decision"],
        bool(case["rewarded"]),
    )
    assert body["limit"] == limit
    assert body["rate_discount_bp"] == pytest.approx(discount)


def test_without_a_report_the_decision_is_the_snapshots(
    client: TestClient, keys: Keys, workspace: Workspace
) -> None:
    frame = entities(workspace)
    companies = frame[~frame["natural_person"]]
    sample = pd.concat(
        [companies[companies["decision"] == d].head(4) for d in ("approve", "refer", "decline")]
    )
    assert set(sample["decision"]) == {"approve", "refer", "decline"}
    for _, row in sample.iterrows():
        body = preapprove(client, keys, row["uscc"]).json()
        got = (
            body["decision"],
            body["limit"],
            body["rate_discount_bp"],
            body["target_group"]["group"],
            body["xinyipi"],
            body["xinyizu"],
        )
        assert got == (
            row["decision"],
            row["limit"],
            row["rate_discount_bp"],
            row["target_group"],
            row["xinyipi"],
            row["xinyizu"],
        ), row["uscc"]
        assert [o["code"] for o in body["overrides"]] == list(row["overrides"])


def test_pboc_report_worsens_the_decision_as_the_policy_says(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    policy = services.policy
    rules = policy.pre_approval
    case = pick_approved(workspace, policy, "small_micro", natural_person=False)
    uscc = case["uscc"]
    refer_limit, _ = expected_terms(
        policy, "small_micro", case["pd"], case["grade"], "refer", bool(case["rewarded"])
    )
    cases = {
        "N": ("approve", "pboc_clean"),
        str(rules.decline_on_pboc_status): ("decline", "pboc_decline"),  # 91+ days late
        str(rules.refer_on_pboc_status): ("refer", "pboc_refer"),  # 61-90 days late
        rules.pboc_decline_symbols[0]: ("decline", "pboc_decline"),
        rules.pboc_refer_symbols[0]: ("refer", "pboc_refer"),
    }
    if rules.refer_on_pboc_status > 1:  # late, but less than the referral threshold
        cases[str(rules.refer_on_pboc_status - 1)] = ("approve", "pboc_clean")
    for symbol, (decision, finding) in cases.items():
        response = preapprove(client, keys, uscc, pboc_report=history(symbol))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["decision"], body["pboc"]["finding"]) == (decision, finding), symbol
        codes = [r["code"] for r in body["decision_reasons"]]
        assert finding in codes
        if decision == "decline":
            assert (body["limit"], body["rate_discount_bp"]) == (0, 0)
            assert codes[0] == "pboc_decline"  # the deciding reason first
        if decision == "refer":
            assert body["limit"] == refer_limit
    worst = preapprove(client, keys, uscc, pboc_report=history(str(rules.decline_on_pboc_status)))
    assert worst.json()["pboc"]["worst_bucket"] == rules.decline_on_pboc_status


@pytest.mark.parametrize(
    ("report", "field", "rule"),
    [
        (
            {"accounts": [{"account_id": "1", "status_24m": "NNX"}]},
            "pboc_report.accounts.0.status_24m",
            "length",
        ),
        (
            {"accounts": [{"account_id": "1", "status_24m": "N" * 23 + "X"}]},
            "pboc_report.accounts.0.status_24m",
            "symbol",
        ),
        (
            {"accounts": [{"account_id": "1", "status_24m": "N" * 24, "bank": "x"}]},
            "pboc_report.accounts.0.bank",
            "unknown_key",
        ),
        (
            {"accounts": [{"account_id": "1", "status_24m": "N" * 24}] * 2},
            "pboc_report.accounts",
            "unique",
        ),
        ({}, "pboc_report.accounts", "missing"),
    ],
)
def test_malformed_report_names_the_field_and_writes_nothing(
    client: TestClient, keys: Keys, services: Services, report: Any, field: str, rule: str
) -> None:
    response = preapprove(client, keys, keys.enterprise.uscc, pboc_report=report)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == field
    assert response.json()["detail"][0]["rule"] == rule
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(InquiryRecord)) == 0


def blacklisted(workspace: Workspace) -> pd.Series:
    """The blacklisted (严重失信) entity with the lowest PD of the warehouse."""
    frame = entities(workspace)
    found = frame[(frame["gov_blacklisted"] > 0) & ~frame["natural_person"]]
    assert len(found), "the small warehouse has no blacklisted enterprise"
    return found.sort_values("pd").iloc[0]


def test_blacklisted_entity_is_declined_whatever_its_pd(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    policy = services.policy
    case = blacklisted(workspace)
    # its own PD would be approved: only the blacklist declines it
    assert case["pd"] <= policy.pre_approval.approve_max_pd
    body = preapprove(client, keys, case["uscc"], pboc_report=history("N")).json()
    assert (body["decision"], body["limit"], body["rate_discount_bp"]) == ("decline", 0, 0)
    assert body["decision_reasons"][0]["code"] == "punish:gov_blacklisted"
    assert body["decision_reasons"][0]["zh"] == (
        policy.decision_reasons["punish:gov_blacklisted"].zh
    )
    assert "punish:gov_blacklisted" in [o["code"] for o in body["overrides"]]
    assert (body["xinyipi"], body["xinyizu"]) == (False, False)
    # scored again with the best PD the scale knows, still on the list: still declined
    add_rescore(services, workspace, case["uscc"], pd=policy.score.pd_floor)
    again = preapprove(client, keys, case["uscc"]).json()
    assert again["provenance"]["rescored"] is True
    assert again["pd"] == policy.score.pd_floor
    assert again["grade"] == policy.grade_names[0]
    assert (again["decision"], again["limit"]) == ("decline", 0)
    # off the list after a repair (the rescore applies no punishment): approved
    add_rescore(
        services,
        workspace,
        case["uscc"],
        pd=policy.score.pd_floor,
        overrides=[],
        decision_reasons=["pd_approve", "pboc_absent"],
    )
    repaired = preapprove(client, keys, case["uscc"]).json()
    assert repaired["decision"] == "approve"
    assert repaired["overrides"] == []


def test_preapproval_leaves_an_inquiry_record(
    client: TestClient, keys: Keys, services: Services
) -> None:
    secret = services.settings.secret
    response = preapprove(client, keys, keys.enterprise.uscc)
    assert response.status_code == 200
    consent(client, keys, keys.business.legal_rep_id)
    assert preapprove(client, keys, keys.business.uscc).status_code == 200
    code, reason = PURPOSES[Purpose.LOAN_APPROVAL]
    with services.database.session() as session:
        records = session.scalars(select(InquiryRecord).order_by(InquiryRecord.id)).all()
        logged = session.scalars(
            select(QueryLog).where(QueryLog.route == "/v1/preapprovals").order_by(QueryLog.id)
        ).all()
        assert [(r.reason_code, r.reason) for r in records] == [(code, reason)] * 2
        # the enterprise is its own subject; a 个体工商户's subject is its operator
        assert [r.subject_ref for r in records] == [
            subject_ref(secret, keys.enterprise.uscc),
            subject_ref(secret, keys.business.legal_rep_id),
        ]
        assert [r.query_id for r in records] == [q.request_id for q in logged]
        assert all(
            q.outcome.startswith("decision=") and q.purpose == "loan_approval" for q in logged
        )
        assert [q.consent_id is not None for q in logged] == [False, True]
        text = " ".join(f"{q.outcome} {q.subject_ref}" for q in logged)
    assert keys.business.legal_rep_id not in text


def test_individual_business_needs_consent_and_other_roles_are_refused(
    client: TestClient, keys: Keys, services: Services
) -> None:
    refused = preapprove(client, keys, keys.business.uscc)
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["rule"] == "recorded"
    for headers in (keys.regulator, keys.analyst, keys.admin, keys.subject):
        response = client.post(
            "/v1/preapprovals", json={"uscc": keys.enterprise.uscc}, headers=headers
        )
        assert response.status_code == 403
    other = preapprove(client, keys, keys.enterprise.uscc, purpose="post_loan")
    assert other.status_code == 422
    assert other.json()["detail"][0]["field"] == "purpose"
    claimed = preapprove(client, keys, keys.enterprise.uscc, target_group="other")
    assert claimed.status_code == 422  # the target group is derived, never claimed
    assert claimed.json()["detail"][0]["field"] == "target_group"
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(InquiryRecord)) == 0


def eligibility(client: TestClient, headers: dict[str, str], uscc: str, **params: str) -> Any:
    response = client.get(f"/v1/entities/{uscc}/eligibility", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_eligibility_by_grade_and_when_punished(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    policy = services.policy
    frame = entities(workspace)
    good = (
        frame[
            frame["grade"].isin(policy.xinyizu.grades)
            & ~frame["punished"]
            & ~frame["natural_person"]
        ]
        .sort_values("uscc")
        .iloc[0]
    )
    body = eligibility(client, keys.regulator, good["uscc"])
    for scheme, grades in (("xinyipi", policy.xinyipi.grades), ("xinyizu", policy.xinyizu.grades)):
        assert body[scheme]["eligible"] is True
        assert body[scheme]["basis"] == "grade"
        assert body[scheme]["eligible_grades"] == list(grades)
        assert body[scheme]["reasons"][0]["code"] == f"grade:{good['grade']}"
    case = blacklisted(workspace)
    punished = eligibility(client, keys.regulator, case["uscc"])
    for scheme in ("xinyipi", "xinyizu"):
        assert punished[scheme]["eligible"] is False
        assert punished[scheme]["basis"] == "punished"
        assert [r["code"] for r in punished[scheme]["reasons"]] == [
            o for o in case["overrides"] if o.startswith("punish:")
        ]
        assert punished[scheme]["reasons"][0]["zh"] == (
            policy.decision_reasons[punished[scheme]["reasons"][0]["code"]].zh
        )
    assert punished["supervision_class"] == policy.overrides.punish_class


def test_eligibility_from_a_red_list_and_withheld_in_class_d(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    """Red-listed entities below the eligible grades: constructed with rescores (the small
    warehouse has too few), at a PD inside a class-B grade and inside a class-D grade."""
    policy = services.policy
    frame = entities(workspace)
    red = frame[(frame["gov_red_listed"] > 0) & ~frame["punished"] & ~frame["natural_person"]]
    assert len(red) >= 2, "the small warehouse has too few red-listed enterprises"
    pd_of = {band.grade: band.pd_max for band in policy.grades}
    grade_b = next(
        g
        for g in policy.grade_names
        if g not in policy.xinyipi.grades and policy.class_of_grade[g] == "B"
    )
    grade_d = next(g for g in policy.grade_names if policy.class_of_grade[g] == "D")
    first, second = red.sort_values("uscc")["uscc"].iloc[:2]
    add_rescore(
        services,
        workspace,
        first,
        pd=pd_of[grade_b],
        overrides=["reward:gov_red_listed"],
        decision_reasons=["pd_refer"],
    )
    add_rescore(
        services,
        workspace,
        second,
        pd=pd_of[grade_d],
        overrides=[],
        decision_reasons=["pd_decline", "pboc_absent", "reward_withheld"],
    )
    rewarded = eligibility(client, keys.regulator, first)
    assert rewarded["grade"] == grade_b
    assert rewarded["xinyipi"]["eligible"] is policy.overrides.reward_xinyipi
    assert rewarded["xinyipi"]["basis"] == "red_list"
    assert [r["code"] for r in rewarded["xinyipi"]["reasons"]] == ["reward:gov_red_listed"]
    withheld = eligibility(client, keys.regulator, second)
    assert withheld["supervision_class"] == policy.overrides.punish_class
    for scheme in ("xinyipi", "xinyizu"):
        assert withheld[scheme]["eligible"] is False
        assert withheld[scheme]["basis"] == "supervision_class"
        codes = [r["code"] for r in withheld[scheme]["reasons"]]
        assert codes == [f"class:{policy.overrides.punish_class}", "reward_withheld"]


def test_eligibility_access(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    url = f"/v1/entities/{keys.enterprise.uscc}/eligibility"
    no_purpose = client.get(url, headers=keys.underwriter)
    assert no_purpose.status_code == 400
    assert no_purpose.json()["detail"][0]["field"] == "purpose"
    assert (
        client.get(url, params={"purpose": "loan_approval"}, headers=keys.underwriter).status_code
        == 200
    )
    business = f"/v1/entities/{keys.business.uscc}/eligibility"
    refused = client.get(business, params={"purpose": "loan_approval"}, headers=keys.underwriter)
    assert refused.status_code == 403  # the operator's consent, as for the score
    assert client.get(business, headers=keys.regulator).status_code == 200
    for headers in (keys.analyst, keys.admin, keys.subject):
        assert client.get(url, headers=headers).status_code == 403
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(InquiryRecord)) == 1
        logged = session.scalars(
            select(QueryLog).where(QueryLog.role == "regulator", QueryLog.status == 200)
        ).all()
    assert [q.subject_ref for q in logged] == [
        subject_ref(services.settings.secret, keys.business.uscc)
    ]
