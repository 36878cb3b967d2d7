"""Reading the query log: filters, pagination, and that nobody can change it (both databases)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from api.db.tables import InquiryRecord, QueryLog
from api.security import subject_ref
from api.state import Services
from tests.api.conftest import Keys, consent_body

SCORE_ROUTE = "/v1/entities/{uscc}/score"
COLUMNS = (
    "id",
    "at",
    "request_id",
    "key_id",
    "role",
    "institution",
    "method",
    "route",
    "subject_ref",
    "purpose",
    "consent_id",
    "status",
    "outcome",
)


def traffic(client: TestClient, keys: Keys) -> None:
    """Queries by several roles, about the enterprise and the 个体工商户, one refused."""
    business, enterprise = keys.business, keys.enterprise
    calls = [
        ("post", "/v1/consents", keys.underwriter, consent_body(business.legal_rep_id), 201),
        (
            "get",
            f"/v1/entities/{enterprise.uscc}/score?purpose=loan_approval",
            keys.underwriter,
            None,
            200,
        ),
        (
            "get",
            f"/v1/entities/{business.uscc}/score?purpose=loan_approval",
            keys.underwriter,
            None,
            200,
        ),
        ("get", f"/v1/entities/{business.uscc}/score", keys.regulator, None, 200),
        ("post", "/v1/preapprovals", keys.regulator, {"uscc": enterprise.uscc}, 403),
        ("get", "/v1/policy", keys.analyst, None, 200),
    ]
    for method, url, headers, body, status in calls:
        response = client.request(method, url, headers=headers, json=body)
        assert response.status_code == status, (url, response.text)


def stored(services: Services) -> list[dict[str, Any]]:
    with services.database.session() as session:
        rows = session.scalars(select(QueryLog).order_by(QueryLog.id)).all()
        return [{c: getattr(r, c) for c in COLUMNS} for r in rows]


def read(client: TestClient, keys: Keys, **params: Any) -> Any:
    response = client.get("/v1/audit", params=params, headers=keys.admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_newest_first_and_paginated(client: TestClient, keys: Keys, services: Services) -> None:
    traffic(client, keys)
    rows = stored(services)
    body = read(client, keys, size=100)
    assert body["total"] == len(rows)
    assert [r["id"] for r in body["rows"]] == [r["id"] for r in reversed(rows)]
    assert body["rows"][0]["route"] == rows[-1]["route"]
    second = read(client, keys, page=2, size=2)
    # the first read is now in the log too: it is the newest
    assert [r["id"] for r in second["rows"]] == [r["id"] for r in reversed(rows)][1:3]
    assert second["total"] == len(rows) + 1
    limit = services.settings.page_size_max
    too_big = client.get("/v1/audit", params={"size": limit + 1}, headers=keys.admin)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["field"] == "size"


def test_filters_by_role_route_and_status(
    client: TestClient, keys: Keys, services: Services
) -> None:
    traffic(client, keys)
    rows = stored(services)
    for params, keep in (
        ({"role": "regulator"}, lambda r: r["role"] == "regulator"),
        ({"route": SCORE_ROUTE}, lambda r: r["route"] == SCORE_ROUTE),
        ({"status": 403}, lambda r: r["status"] == 403),
        (
            {"role": "underwriter", "route": SCORE_ROUTE},
            lambda r: r["role"] == "underwriter" and r["route"] == SCORE_ROUTE,
        ),
    ):
        want = [r["id"] for r in reversed(rows) if keep(r)]
        body = read(client, keys, size=100, **params)
        assert want, params
        assert [r["id"] for r in body["rows"]] == want, params
        assert body["total"] == len(want)
    bad_role = client.get("/v1/audit", params={"role": "boss"}, headers=keys.admin)
    assert bad_role.status_code == 422
    assert bad_role.json()["detail"][0]["field"] == "role"
    assert "underwriter" in bad_role.json()["detail"][0]["message"]


def test_filters_by_subject_without_storing_it(
    client: TestClient, keys: Keys, services: Services
) -> None:
    traffic(client, keys)
    secret = services.settings.secret
    business, operator = keys.business.uscc, keys.business.legal_rep_id
    # the underwriter's query of the 个体工商户 is logged under its operator, the regulator's
    # under the business: either identifier finds both
    refs = {subject_ref(secret, business), subject_ref(secret, operator)}
    want = [r["id"] for r in reversed(stored(services)) if r["subject_ref"] in refs]
    assert len(want) >= 3  # the consent, two score queries
    for subject in (business, operator, operator.lower()):
        body = read(client, keys, subject=subject, size=100)
        assert [r["id"] for r in body["rows"] if r["id"] in want] == want
        assert all(r["subject_ref"] in refs for r in body["rows"])
    enterprise = read(client, keys, subject=keys.enterprise.uscc)
    assert {r["subject_ref"] for r in enterprise["rows"]} == {
        subject_ref(secret, keys.enterprise.uscc)
    }
    text = " ".join(str(v) for r in stored(services) for v in r.values())
    assert operator not in text
    assert business not in text
    audits = [r for r in stored(services) if r["route"] == "/v1/audit"]
    assert audits[-1]["subject_ref"] == subject_ref(secret, keys.enterprise.uscc)
    malformed = client.get("/v1/audit", params={"subject": "12345"}, headers=keys.admin)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["field"] == "subject"
    assert malformed.json()["detail"][0]["rule"] == "uscc_or_resident_id"


def test_filters_by_time_with_offsets(client: TestClient, keys: Keys, services: Services) -> None:
    traffic(client, keys)
    rows = stored(services)
    middle = rows[len(rows) // 2]["at"]
    middle = middle if middle.tzinfo else middle.replace(tzinfo=dt.UTC)
    beijing = dt.timezone(dt.timedelta(hours=8))
    since = middle.astimezone(beijing).isoformat()  # the same instant, written in +08:00

    def utc(r: dict[str, Any]) -> dt.datetime:
        return r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=dt.UTC)

    after = read(client, keys, since=since, size=100)
    assert [r["id"] for r in after["rows"]] == [r["id"] for r in reversed(rows) if utc(r) >= middle]
    before = read(client, keys, until=since, size=100)
    assert [r["id"] for r in before["rows"]] == [r["id"] for r in reversed(rows) if utc(r) < middle]
    assert after["total"] + before["total"] == len(rows)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert read(client, keys, since=future)["total"] == 0
    naive = client.get("/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=keys.admin)
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["field"] == "since"
    backwards = client.get(
        "/v1/audit", params={"since": future, "until": since}, headers=keys.admin
    )
    assert backwards.status_code == 400
    assert backwards.json()["detail"][0]["rule"] == "after_since"


def test_only_the_admin_reads_the_log(client: TestClient, keys: Keys) -> None:
    for headers in (keys.underwriter, keys.regulator, keys.analyst, keys.subject):
        assert client.get("/v1/audit", headers=headers).status_code == 403
    assert client.get("/v1/audit").status_code == 401


def test_the_api_cannot_change_the_log(client: TestClient, keys: Keys, services: Services) -> None:
    traffic(client, keys)
    before = stored(services)
    for method in ("put", "patch", "delete", "post"):
        response = client.request(method, "/v1/audit", headers=keys.admin, json={"outcome": "x"})
        assert response.status_code == 405, method
        assert response.json()["detail"][0]["rule"] == "method_allowed"
        one = client.request(method, f"/v1/audit/{before[0]['id']}", headers=keys.admin)
        assert one.status_code in (404, 405)
    after = stored(services)
    assert after[: len(before)] == before  # every earlier row exactly as it was
    assert all(r["id"] > before[-1]["id"] for r in after[len(before) :])  # only appended


def test_the_database_refuses_updates_and_deletes(
    client: TestClient, keys: Keys, services: Services
) -> None:
    traffic(client, keys)
    before = stored(services)
    statements = [
        update(QueryLog).where(QueryLog.id == before[0]["id"]).values(outcome="tampered"),
        update(QueryLog).values(subject_ref=None),
        delete(QueryLog).where(QueryLog.id == before[-1]["id"]),
        update(InquiryRecord).values(institution="another bank"),
        delete(InquiryRecord),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), services.database.session() as s:
            s.execute(statement)
    # through the ORM as well: a changed attribute is refused when flushed
    with services.database.session() as s:
        row = s.get(QueryLog, before[0]["id"])
        assert row is not None
        row.status = 200 if row.status != 200 else 500
        with pytest.raises(DBAPIError, match="append-only"):
            s.flush()
        s.rollback()
    assert stored(services) == before
    with services.database.session() as session:
        assert session.scalars(select(InquiryRecord)).all()  # the inquiries are still there
