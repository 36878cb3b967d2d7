"""Credit repair (信用修复): apply, approve (the view and the score change), reject, refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.tables import EntityRescore, Repair
from api.services.records import REPAIR_DECISIONS, repairable_tables
from api.services.rescore import entity_view
from api.services.workdays import today
from api.state import Services
from features.catalog import load_catalog
from features.view.context import months_before
from scoring.reasons import default_reason_codes
from tests.api.conftest import Keys, Workspace
from tests.api.remedies import (
    PENALTY_FEATURES,
    Penalty,
    counted_penalties,
    rows,
    set_today,
    subject_key,
)

FEATURE = "gov_penalties_36m"


def body(uscc: str, table: str, record_id: str) -> dict[str, str]:
    return {
        "uscc": uscc,
        "record_table": table,
        "record_id": record_id,
        "statement": "罚款已缴清，违法行为已整改",
    }


def penalty_body(p: Penalty) -> dict[str, str]:
    return body(p.uscc, "admin_penalties", p.case_no)


def view_row(services: Services, uscc: str) -> dict[str, Any]:
    assert services.snapshot is not None
    with services.database.session() as session:
        row: dict[str, Any] = entity_view(
            services, session, [uscc], services.snapshot.as_of
        ).to_pylist()[0]
    return row


@pytest.fixture
def penalty(workspace: Workspace, services: Services) -> Penalty:
    """A counted penalty that is among the reasons of its entity's score."""
    feature_of = {e.code: e.feature for e in default_reason_codes().codes}
    for p in counted_penalties(workspace, services):
        row = workspace.snapshot.score_row(p.uscc)
        features = {feature_of.get(row.get(f"reason_{k}_code") or "") for k in range(1, 5)}
        if features & set(PENALTY_FEATURES):
            return p
    raise AssertionError("no penalised enterprise whose penalty is among its reasons")


def test_an_approved_repair_changes_the_view_and_the_score(
    client: TestClient, services: Services, workspace: Workspace, keys: Keys, penalty: Penalty
) -> None:
    subject = subject_key(services, penalty.uscc)
    served_view = workspace.snapshot.view_row(penalty.uscc)
    served_score = workspace.snapshot.score_row(penalty.uscc)

    applied = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject)
    assert applied.status_code == 201, applied.text
    repair = applied.json()
    assert (repair["status"], repair["decision"]) == ("under_review", "审核中")
    assert view_row(services, penalty.uscc)[FEATURE] == served_view[FEATURE]  # not yet
    before = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert before["provenance"]["rescored"] is False

    approved = client.post(
        f"/v1/repairs/{repair['id']}/approve",
        json={"note": "材料齐全，准予修复"},
        headers=keys.admin,
    )
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decision"]) == ("approved", "批准")
    assert approved.json()["decided_on"] == today().isoformat()

    rebuilt = view_row(services, penalty.uscc)
    assert rebuilt[FEATURE] == served_view[FEATURE] - 1
    assert rebuilt["gov_negative_records_36m"] == served_view["gov_negative_records_36m"] - 1

    after = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject)
    assert after.status_code == 200, after.text
    score = after.json()
    assert score["provenance"]["rescored"] is True
    assert score["provenance"]["rescore_cause"] == f"repair:{repair['id']}"
    assert score["pd"] != pytest.approx(served_score["pd"])
    with services.database.session() as session:
        stored = session.scalars(select(EntityRescore)).one()
    assert stored.uscc == penalty.uscc
    assert (score["pd"], score["score"], score["grade"]) == (
        stored.result["pd"],
        stored.result["score"],
        stored.result["grade"],
    )
    # the reasons carry the rebuilt view's values
    assert score["reasons"]
    for reason in score["reasons"]:
        expected = rebuilt[reason["feature"]]
        if isinstance(expected, float):
            assert reason["value"] == pytest.approx(expected)
        else:
            assert reason["value"] == expected


def test_a_rejected_repair_changes_nothing(
    client: TestClient, services: Services, keys: Keys, penalty: Penalty
) -> None:
    subject = subject_key(services, penalty.uscc)
    repair = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject).json()
    pending = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject)
    assert pending.status_code == 409
    assert pending.json()["detail"][0]["rule"] == "one_repair"
    rejected = client.post(
        f"/v1/repairs/{repair['id']}/reject", json={"note": "未提供整改材料"}, headers=keys.admin
    )
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["decision"]) == ("rejected", "驳回")
    score = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert score["provenance"]["rescored"] is False
    late = client.post(
        f"/v1/repairs/{repair['id']}/approve", json={"note": "x"}, headers=keys.admin
    )
    assert late.status_code == 409
    assert late.json()["detail"][0]["rule"] == "under_review"
    # a new application after a rejection is allowed
    again = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject)
    assert again.status_code == 201
    listed = client.get("/v1/repairs?status=rejected", headers=subject).json()
    assert [r["id"] for r in listed["items"]] == [repair["id"]]
    assert client.get("/v1/repairs", headers=keys.admin).json()["total"] == 2
    assert client.get("/v1/repairs", headers=keys.subject).json()["total"] == 0
    assert client.get(f"/v1/repairs/{repair['id']}", headers=keys.subject).status_code == 403


def _blacklisted(workspace: Workspace) -> tuple[str, str, str, str]:
    """An enterprise listed as seriously dishonest now, one of its repairable records and
    its listing: ``(uscc, table, record_id, list_id)``."""
    for uscc, list_id in rows(
        workspace,
        "SELECT s.subject_id, s.list_id FROM serious_dishonesty s "
        "JOIN entities e ON e.uscc = s.subject_id WHERE s.removed_on IS NULL "
        "AND s.list_id NOT IN (SELECT record_id FROM credit_objections) ORDER BY 1",
    ):
        for table in sorted(repairable_tables()):
            subject = (
                "uscc"
                if table in ("admin_penalties", "abnormal_operations", "credit_commitments")
                else "subject_id"
            )
            key = load_catalog().item(table).key[0]
            found = rows(
                workspace, f"SELECT {key} FROM {table} WHERE {subject} = ? LIMIT 1", [uscc]
            )
            if found:
                return uscc, table, str(found[0][0]), list_id
    raise AssertionError("no blacklisted enterprise with a repairable record")


def test_no_repair_for_an_entity_on_the_serious_dishonesty_list(
    client: TestClient, services: Services, workspace: Workspace
) -> None:
    uscc, table, record_id, list_id = _blacklisted(workspace)
    subject = subject_key(services, uscc)
    refused = client.post("/v1/repairs", json=body(uscc, table, record_id), headers=subject)
    assert refused.status_code == 409
    detail = refused.json()["detail"][0]
    assert (detail["field"], detail["rule"]) == ("uscc", "not_seriously_dishonest")
    assert "第三十二条" in detail["message"]
    listing = client.post(
        "/v1/repairs", json=body(uscc, "serious_dishonesty", list_id), headers=subject
    )
    assert listing.status_code == 409
    assert listing.json()["detail"][0]["rule"] == "repairable_table"
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Repair)) == 0


def test_minimum_publicity_before_a_penalty_is_repaired(
    client: TestClient, app: FastAPI, services: Services, workspace: Workspace, penalty: Penalty
) -> None:
    ((severity, domain, decided),) = rows(
        workspace,
        "SELECT severity, domain, decided_on FROM admin_penalties WHERE case_no = ?",
        [penalty.case_no],
    )
    remedies = services.policy.remedies
    months = max(
        remedies.repair_min_publicity_months[severity],
        remedies.repair_min_publicity_months_by_domain.get(domain, 0),
    )
    end = months_before(decided, -months)
    subject = subject_key(services, penalty.uscc)
    set_today(app, end)
    early = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject)
    assert early.status_code == 409
    assert early.json()["detail"][0]["rule"] == "min_publicity"
    assert (end + dt.timedelta(days=1)).isoformat() in early.json()["detail"][0]["message"]
    set_today(app, end + dt.timedelta(days=1))
    on_time = client.post("/v1/repairs", json=penalty_body(penalty), headers=subject)
    assert on_time.status_code == 201, on_time.text
    assert on_time.json()["applied_on"] == (end + dt.timedelta(days=1)).isoformat()


def test_no_repair_of_penalties_whose_publicity_cannot_end_early(
    client: TestClient, services: Services, workspace: Workspace
) -> None:
    excluded = list(services.policy.remedies.repair_excluded_penalty_types)
    marks = ", ".join("?" for _ in excluded)
    uscc, case_no = rows(
        workspace,
        f"SELECT p.uscc, p.case_no FROM admin_penalties p JOIN entities e ON e.uscc = p.uscc "
        f"WHERE p.penalty_type IN ({marks}) AND p.uscc NOT IN "
        f"(SELECT subject_id FROM serious_dishonesty) ORDER BY 1, 2 LIMIT 1",
        excluded,
    )[0]
    refused = client.post(
        "/v1/repairs",
        json=body(uscc, "admin_penalties", case_no),
        headers=subject_key(services, uscc),
    )
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["rule"] == "early_removal_allowed"


def test_a_subject_cannot_repair_another_entitys_record(
    client: TestClient, keys: Keys, penalty: Penalty
) -> None:
    refused = client.post("/v1/repairs", json=penalty_body(penalty), headers=keys.subject)
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["rule"] == "own_subject"
    missing = client.post(
        "/v1/repairs",
        json=body(keys.enterprise.uscc, "admin_penalties", "无此文号"),
        headers=keys.subject,
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/v1/repairs", {"subject"}),
        ("get", "/v1/repairs", {"subject", "admin"}),
        ("get", "/v1/repairs/1", {"subject", "admin"}),
        ("post", "/v1/repairs/1/approve", {"admin"}),
        ("post", "/v1/repairs/1/reject", {"admin"}),
    ],
)
def test_roles(client: TestClient, keys: Keys, method: str, path: str, allowed: set[str]) -> None:
    payload: dict[str, str] | None = None
    if path == "/v1/repairs" and method == "post":
        payload = body(keys.enterprise.uscc, "admin_penalties", "x")
    elif method == "post":
        payload = {"note": "x"}
    for role in ("underwriter", "regulator", "analyst", "subject", "admin"):
        response = client.request(method, path, json=payload, headers=getattr(keys, role))
        if role in allowed:
            assert response.status_code != 403, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
    assert client.request(method, path, json=payload).status_code == 401


def test_policy_and_states_match_the_catalog() -> None:
    from scoring.policy import load_policy  # noqa: PLC0415

    catalog = load_catalog()
    remedies = load_policy().remedies
    penalties = catalog.item("admin_penalties").columns
    assert set(remedies.repair_min_publicity_months) == set(penalties["severity"].codes or {})
    assert set(remedies.repair_min_publicity_months_by_domain) <= set(
        penalties["domain"].codes or {}
    )
    assert set(remedies.repair_excluded_penalty_types) <= set(penalties["penalty_type"].codes or {})
    decisions = catalog.item("credit_repairs").columns["decision"].codes or {}
    assert set(REPAIR_DECISIONS.values()) == set(decisions)
