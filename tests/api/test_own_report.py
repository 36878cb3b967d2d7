"""The subject's own report: identity unmasked, scores, records, objections, repairs, inquiries."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.tables import QueryLog
from api.security import subject_ref
from api.services.consent import PURPOSES, Purpose
from api.services.records import record_tables
from api.state import Services
from tests.api.conftest import INSTITUTION, Keys, Workspace, consent_body
from tests.api.remedies import counted_penalties, rows, subject_key


def warehouse_records(workspace: Workspace, subjects: tuple[str, ...]) -> set[tuple[str, str]]:
    """``(table, record_id)`` of every record filed under ``subjects``, straight from DuckDB."""
    marks = ", ".join("?" for _ in subjects)
    out = set()
    for table in record_tables().values():
        for (record_id,) in rows(
            workspace,
            f"SELECT {table.key} FROM {table.name} WHERE {table.subject} IN ({marks})",
            list(subjects),
        ):
            out.add((table.name, str(record_id)))
    return out


def test_an_enterprise_sees_its_score_records_and_objections(
    client: TestClient, services: Services, workspace: Workspace
) -> None:
    penalty = counted_penalties(workspace, services)[0]
    subject = subject_key(services, penalty.uscc)
    objection = client.post(
        "/v1/objections",
        json={
            "uscc": penalty.uscc,
            "record_table": "admin_penalties",
            "record_id": penalty.case_no,
            "statement": "处罚对象错误",
        },
        headers=subject,
    ).json()
    response = client.get("/v1/me/report", headers=subject)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["subject_id"] == penalty.uscc
    (entity,) = report["entities"]
    facts = workspace.directory.entities[penalty.uscc]
    assert entity["identity"]["masked"] is False
    assert entity["identity"]["legal_rep_id"] == facts.legal_rep_id
    assert entity["identity"]["legal_rep_name"] == facts.legal_rep_name
    got = {(r["record_table"], r["record_id"]) for r in entity["records"]}
    assert got == warehouse_records(workspace, (penalty.uscc,))
    assert ("admin_penalties", penalty.case_no) in got
    titled = {r["record_table"]: r["title"] for r in entity["records"]}
    assert titled["admin_penalties"] == "行政处罚"
    penalty_record = next(r for r in entity["records"] if r["record_id"] == penalty.case_no)
    assert penalty_record["fields"]["uscc"] == penalty.uscc
    assert penalty_record["fields"]["penalty_type"] == penalty.penalty_type
    assert [o["id"] for o in entity["objections"]] == [objection["id"]]
    assert entity["repairs"] == []
    # the score is the current one: rescored after the objection
    assert entity["score"]["provenance"]["rescore_cause"] == f"objection:{objection['id']}:open"
    assert entity["score"]["lending"] is not None
    assert entity["score"]["identity"]["masked"] is False


def test_inquiries_show_who_queried_when_and_why(
    client: TestClient, services: Services, keys: Keys
) -> None:
    client.post(
        "/v1/consents", json=consent_body(keys.business.legal_rep_id), headers=keys.underwriter
    )
    queried = client.get(
        f"/v1/entities/{keys.business.uscc}/score?purpose=loan_approval", headers=keys.underwriter
    )
    assert queried.status_code == 200, queried.text
    report = client.get("/v1/me/report", headers=keys.person).json()
    assert report["subject_id"] == keys.business.legal_rep_id
    code, reason = PURPOSES[Purpose.LOAN_APPROVAL]
    assert len(report["inquiries"]) == 1
    inquiry = report["inquiries"][0]
    assert (inquiry["institution"], inquiry["reason_code"], inquiry["reason"]) == (
        INSTITUTION,
        code,
        reason,
    )
    # the enterprise was not queried: its report has no inquiry
    assert client.get("/v1/me/report", headers=keys.subject).json()["inquiries"] == []


def test_an_operator_sees_the_records_filed_under_their_id(
    client: TestClient, services: Services, workspace: Workspace
) -> None:
    uscc, person = next(
        (f.uscc, f.legal_rep_id)
        for f in workspace.entities(natural_person=True)
        if warehouse_records(workspace, (f.legal_rep_id,))
    )
    report = client.get("/v1/me/report", headers=subject_key(services, person)).json()
    assert report["subject_id"] == person
    assert [e["identity"]["uscc"] for e in report["entities"]] == [uscc]
    got = {(r["record_table"], r["record_id"]) for r in report["entities"][0]["records"]}
    assert got == warehouse_records(workspace, (uscc, person))
    assert warehouse_records(workspace, (person,)) <= got
    assert report["entities"][0]["score"]["score"] == workspace.snapshot.score_row(uscc)["score"]


@pytest.mark.parametrize("role", ["underwriter", "regulator", "analyst", "admin"])
def test_only_subjects_have_an_own_report(client: TestClient, keys: Keys, role: str) -> None:
    refused = client.get("/v1/me/report", headers=getattr(keys, role))
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["field"] == "role"
    assert client.get("/v1/me/report").status_code == 401


def test_the_report_is_logged_under_the_subjects_pseudonym(
    client: TestClient, services: Services, keys: Keys
) -> None:
    assert client.get("/v1/me/report", headers=keys.person).status_code == 200
    with services.database.session() as session:
        row = session.scalars(select(QueryLog).where(QueryLog.route == "/v1/me/report")).one()
    assert row.subject_ref == subject_ref(services.settings.secret, keys.business.legal_rep_id)
    assert keys.business.legal_rep_id not in row.outcome
    assert row.outcome.startswith("entities=1")
