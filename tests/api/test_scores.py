"""Entity and person scores: roles, consent, masking, reasons, the query log."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.tables import InquiryRecord, QueryLog
from api.state import Services
from tests.api.conftest import Keys, Workspace, consent_body


def test_no_key_is_401(client: TestClient, keys: Keys) -> None:
    response = client.get(f"/v1/entities/{keys.enterprise.uscc}/score")
    assert response.status_code == 401
    assert response.json()["detail"][0]["field"] == "Authorization"
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = client.get(
        f"/v1/entities/{keys.enterprise.uscc}/score", headers={"Authorization": "Bearer wzc_x_y"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["detail"][0]["rule"] == "known_key"


def test_underwriter_sees_score_reasons_and_lending(
    client: TestClient, keys: Keys, workspace: Workspace
) -> None:
    uscc = keys.enterprise.uscc
    response = client.get(
        f"/v1/entities/{uscc}/score?purpose=loan_approval", headers=keys.underwriter
    )
    assert response.status_code == 200, response.text
    body = response.json()
    row = workspace.snapshot.score_row(uscc)
    assert body["score"] == row["score"]
    assert body["grade"] == row["grade"]
    assert body["pd"] == row["pd"]
    assert body["lending"]["decision"] == row["decision"]
    codes = [r["code"] for r in body["reasons"]]
    stored = [row[f"reason_{k}_code"] for k in range(1, 5) if row.get(f"reason_{k}_code")]
    assert codes == stored
    # an enterprise's legal representative is a natural person: masked without consent
    assert body["identity"]["masked"] is True
    assert "*" in body["identity"]["legal_rep_id"]
    assert body["identity"]["legal_rep_id"] != keys.enterprise.legal_rep_id


def test_regulator_sees_no_pboc_reasons_and_no_lending(client: TestClient, keys: Keys) -> None:
    response = client.get(f"/v1/entities/{keys.enterprise.uscc}/score", headers=keys.regulator)
    assert response.status_code == 200
    body = response.json()
    assert body["lending"] is None
    assert all(r["source"] != "pboc" for r in body["reasons"])
    assert body["supervision_class"] in {"A", "B", "C", "D"}


def test_malformed_uscc_names_the_failed_check(client: TestClient, keys: Keys) -> None:
    bad = keys.enterprise.uscc[:-1] + ("0" if keys.enterprise.uscc[-1] != "0" else "1")
    response = client.get(f"/v1/entities/{bad}/score", headers=keys.regulator)
    assert response.status_code == 422
    assert response.json()["detail"][0] == {
        "field": "uscc",
        "rule": "uscc_check",
        "message": response.json()["detail"][0]["message"],
    }


def test_individual_business_needs_the_operators_consent(
    client: TestClient, keys: Keys, services: Services
) -> None:
    url = f"/v1/entities/{keys.business.uscc}/score?purpose=loan_approval"
    refused = client.get(url, headers=keys.underwriter)
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["rule"] == "recorded"
    recorded = client.post(
        "/v1/consents", json=consent_body(keys.business.legal_rep_id), headers=keys.underwriter
    )
    assert recorded.status_code == 201, recorded.text
    allowed = client.get(url, headers=keys.underwriter)
    assert allowed.status_code == 200
    assert allowed.json()["identity"]["legal_rep_id"] == keys.business.legal_rep_id
    # another purpose is not covered by this consent
    other = client.get(url.replace("loan_approval", "post_loan"), headers=keys.underwriter)
    assert other.status_code == 403
    with services.database.session() as session:
        inquiries = session.scalar(select(func.count()).select_from(InquiryRecord))
    assert inquiries == 1  # the refused queries left no inquiry record: nothing half-written


def test_subject_sees_only_itself(client: TestClient, keys: Keys) -> None:
    own = client.get(f"/v1/entities/{keys.enterprise.uscc}/score", headers=keys.subject)
    assert own.status_code == 200
    assert own.json()["identity"]["masked"] is False
    other = client.get(f"/v1/entities/{keys.business.uscc}/score", headers=keys.subject)
    assert other.status_code == 403
    person = client.get(f"/v1/persons/{keys.business.legal_rep_id}/scores", headers=keys.person)
    assert person.status_code == 200
    assert keys.business.uscc in [s["identity"]["uscc"] for s in person.json()["scores"]]


def test_every_query_is_logged_without_resident_ids(
    client: TestClient, keys: Keys, services: Services
) -> None:
    client.post(
        "/v1/consents", json=consent_body(keys.business.legal_rep_id), headers=keys.underwriter
    )
    urls = [
        f"/v1/persons/{keys.business.legal_rep_id}/scores?purpose=loan_approval",
        f"/v1/entities/{keys.enterprise.uscc}/score?purpose=loan_approval",
        f"/v1/entities/{keys.business.uscc}/score?purpose=post_loan",  # refused: no consent
    ]
    statuses = [client.get(u, headers=keys.underwriter).status_code for u in urls]
    assert statuses == [200, 200, 403]
    with services.database.session() as session:
        rows = session.scalars(select(QueryLog).order_by(QueryLog.id)).all()
        assert [r.status for r in rows] == [201, *statuses]
        assert all(r.role == "underwriter" and r.subject_ref for r in rows)
        text = " ".join(f"{r.route} {r.outcome} {r.subject_ref}" for r in rows)
    assert keys.business.legal_rep_id not in text
    assert "/v1/persons/{resident_id}/scores" in text


def test_an_individual_business_name_is_masked_for_a_regulator(
    client: TestClient, keys: Keys
) -> None:
    body = client.get(f"/v1/entities/{keys.business.uscc}/score", headers=keys.regulator).json()
    assert body["identity"]["masked"] is True
    assert body["identity"]["name"] != keys.business.name
    assert "*" in body["identity"]["name"]
    own = client.get(f"/v1/persons/{keys.business.legal_rep_id}/scores", headers=keys.person)
    assert own.json()["scores"][0]["identity"]["name"] == keys.business.name


def test_console_pages_are_in_the_query_log(
    client: TestClient, keys: Keys, services: Services
) -> None:
    key = keys.regulator["Authorization"].removeprefix("Bearer ")
    assert client.post("/console/login", data={"api_key": key}).status_code in (200, 303)
    assert client.get("/console/supervision?supervision_class=D").status_code == 200
    with services.database.session() as session:
        routes = session.scalars(select(QueryLog.route).where(QueryLog.role == "regulator")).all()
    assert "/console/supervision" in routes
