"""Objections (异议): raise, list, extend, resolve; the record is out while open; roles."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.db.tables import EntityRescore, Objection, QueryLog, ScoreSnapshot
from api.security import subject_ref
from api.services.models import ModelHolder
from api.services.records import ObjectionOutcome, record_tables
from api.services.rescore import affected_entities, entity_view, reapply
from api.services.workdays import add_working_days
from api.state import Services
from features.catalog import load_catalog
from tests.api.conftest import Keys, Workspace
from tests.api.remedies import Penalty, counted_penalties, rows, set_today, subject_key

FEATURE = "gov_penalties_36m"
#: a Monday before the National Day week of 2024 (10-01 … 10-07 off, 10-12 worked)
RAISED = dt.date(2024, 9, 30)


@pytest.fixture
def penalty(workspace: Workspace, services: Services) -> Penalty:
    return counted_penalties(workspace, services)[0]


@pytest.fixture
def pair(workspace: Workspace, services: Services) -> tuple[Penalty, Penalty]:
    """Two counted penalties of one enterprise."""
    found = counted_penalties(workspace, services)
    per_entity = Counter(p.uscc for p in found)
    uscc = next(u for u, n in per_entity.items() if n >= 2)
    first, second = [p for p in found if p.uscc == uscc][:2]
    return first, second


def view_value(services: Services, uscc: str, feature: str = FEATURE) -> object:
    """The entity's feature in a view rebuilt with the service's objections and repairs."""
    assert services.snapshot is not None
    with services.database.session() as session:
        view = entity_view(services, session, [uscc], services.snapshot.as_of)
    return view.to_pylist()[0][feature]


def body(p: Penalty, statement: str = "处罚决定已被撤销") -> dict[str, str]:
    return {
        "uscc": p.uscc,
        "record_table": "admin_penalties",
        "record_id": p.case_no,
        "statement": statement,
    }


def test_objection_hides_the_record_while_open_and_upheld_brings_it_back(
    client: TestClient,
    app: FastAPI,
    services: Services,
    workspace: Workspace,
    keys: Keys,
    penalty: Penalty,
) -> None:
    set_today(app, RAISED)
    subject = subject_key(services, penalty.uscc)
    served = workspace.snapshot.view_values(penalty.uscc, [FEATURE])[FEATURE]
    assert served >= 1

    raised = client.post("/v1/objections", json=body(penalty), headers=subject)
    assert raised.status_code == 201, raised.text
    objection = raised.json()
    remedies = services.policy.remedies
    assert objection["status"] == "open"
    assert (
        objection["due_on"] == add_working_days(RAISED, remedies.objection_working_days).isoformat()
    )
    assert objection["due_on"] == "2024-10-12"  # after the holiday, on the 调休 Saturday
    assert objection["working_days"] == remedies.objection_working_days
    assert objection["overdue"] is False
    assert view_value(services, penalty.uscc) == served - 1

    score = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert score["provenance"]["rescored"] is True
    assert score["provenance"]["rescore_cause"] == f"objection:{objection['id']}:open"

    resolved = client.post(
        f"/v1/objections/{objection['id']}/resolve",
        json={"outcome": ObjectionOutcome.UPHELD.value, "resolution": "经核查，记录无误"},
        headers=keys.admin,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["outcome"] == "维持"
    assert resolved.json()["resolved_on"] == RAISED.isoformat()
    assert view_value(services, penalty.uscc) == served
    back = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert back["provenance"]["rescore_cause"] == f"objection:{objection['id']}:维持"
    assert back["score"] == workspace.snapshot.score_row(penalty.uscc)["score"]
    assert back["pd"] == pytest.approx(workspace.snapshot.score_row(penalty.uscc)["pd"])


def test_corrected_record_stays_out_for_good(
    client: TestClient, services: Services, workspace: Workspace, keys: Keys, penalty: Penalty
) -> None:
    subject = subject_key(services, penalty.uscc)
    served = workspace.snapshot.view_values(penalty.uscc, [FEATURE])[FEATURE]
    objection = client.post("/v1/objections", json=body(penalty), headers=subject).json()
    again = client.post("/v1/objections", json=body(penalty), headers=subject)
    assert again.status_code == 409
    assert again.json()["detail"][0]["rule"] == "one_open_objection"
    with services.database.session() as session:  # the refused one was rolled back
        assert session.scalar(select(func.count()).select_from(Objection)) == 1
    client.post(
        f"/v1/objections/{objection['id']}/resolve",
        json={"outcome": "更正", "resolution": "已更正"},
        headers=keys.admin,
    )
    assert view_value(services, penalty.uscc) == served - 1
    refused = client.post("/v1/objections", json=body(penalty), headers=subject)
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["rule"] == "in_force"
    twice = client.post(
        f"/v1/objections/{objection['id']}/resolve",
        json={"outcome": "删除", "resolution": "x"},
        headers=keys.admin,
    )
    assert twice.status_code == 409
    assert twice.json()["detail"][0] == {
        "field": "status",
        "rule": "open",
        "message": twice.json()["detail"][0]["message"],
    }


def test_extension_once_and_at_most_the_maximum(
    client: TestClient, app: FastAPI, services: Services, keys: Keys, penalty: Penalty
) -> None:
    set_today(app, RAISED)
    remedies = services.policy.remedies
    objection = client.post(
        "/v1/objections", json=body(penalty), headers=subject_key(services, penalty.uscc)
    ).json()
    url = f"/v1/objections/{objection['id']}/extend"
    too_long = client.post(
        url,
        json={"total_working_days": remedies.objection_max_working_days + 1},
        headers=keys.admin,
    )
    assert too_long.status_code == 400
    assert too_long.json()["detail"][0]["field"] == "total_working_days"
    assert too_long.json()["detail"][0]["rule"] == "max_working_days"
    not_longer = client.post(
        url, json={"total_working_days": remedies.objection_working_days}, headers=keys.admin
    )
    assert not_longer.status_code == 400
    assert not_longer.json()["detail"][0]["rule"] == "longer"

    extended = client.post(url, json={}, headers=keys.admin)
    assert extended.status_code == 200, extended.text
    longest = add_working_days(RAISED, remedies.objection_max_working_days)
    assert extended.json()["due_on"] == longest.isoformat()
    assert extended.json()["working_days"] == remedies.objection_max_working_days
    assert extended.json()["extended"] is True
    again = client.post(url, json={"total_working_days": 10}, headers=keys.admin)
    assert again.status_code == 409
    assert again.json()["detail"][0]["rule"] == "once"


def test_no_extension_after_the_deadline(
    client: TestClient, app: FastAPI, services: Services, keys: Keys, penalty: Penalty
) -> None:
    set_today(app, RAISED)
    objection = client.post(
        "/v1/objections", json=body(penalty), headers=subject_key(services, penalty.uscc)
    ).json()
    set_today(app, dt.date.fromisoformat(objection["due_on"]) + dt.timedelta(days=1))
    late = client.post(f"/v1/objections/{objection['id']}/extend", json={}, headers=keys.admin)
    assert late.status_code == 409
    assert late.json()["detail"][0]["rule"] == "not_passed"


def test_overdue_objections_are_listed_for_the_operator(
    client: TestClient,
    app: FastAPI,
    services: Services,
    keys: Keys,
    pair: tuple[Penalty, Penalty],
) -> None:
    first, second = pair
    subject = subject_key(services, first.uscc)
    set_today(app, RAISED)
    late = client.post("/v1/objections", json=body(first), headers=subject).json()
    kept = client.post("/v1/objections", json=body(second), headers=subject).json()
    client.post(f"/v1/objections/{kept['id']}/extend", json={}, headers=keys.admin)

    due = dt.date.fromisoformat(late["due_on"])
    set_today(app, due)  # on the deadline itself: not yet overdue
    assert client.get("/v1/objections?overdue=true", headers=keys.admin).json()["total"] == 0
    set_today(app, due + dt.timedelta(days=1))
    overdue = client.get("/v1/objections?overdue=true", headers=keys.admin)
    assert overdue.status_code == 200, overdue.text
    assert [o["id"] for o in overdue.json()["items"]] == [late["id"]]
    assert overdue.json()["items"][0]["overdue"] is True
    everything = client.get("/v1/objections?status=open", headers=keys.admin).json()
    assert everything["total"] == 2
    assert {o["id"]: o["overdue"] for o in everything["items"]} == {
        late["id"]: True,
        kept["id"]: False,
    }

    client.post(
        f"/v1/objections/{late['id']}/resolve",
        json={"outcome": "标注", "resolution": "已标注异议说明"},
        headers=keys.admin,
    )
    assert client.get("/v1/objections?overdue=true", headers=keys.admin).json()["total"] == 0
    page = client.get("/v1/objections?size=1&page=2", headers=keys.admin).json()
    assert page["total"] == 2
    assert [o["id"] for o in page["items"]] == [late["id"]]  # newest first
    too_big = client.get(
        f"/v1/objections?size={services.settings.page_size_max + 1}", headers=keys.admin
    )
    assert too_big.status_code == 400
    assert too_big.json()["detail"][0]["field"] == "size"


def test_subjects_see_their_own_objections_only(
    client: TestClient, services: Services, keys: Keys, penalty: Penalty
) -> None:
    owner = subject_key(services, penalty.uscc)
    objection = client.post("/v1/objections", json=body(penalty), headers=owner).json()
    mine = client.get("/v1/objections", headers=owner).json()
    assert [o["id"] for o in mine["items"]] == [objection["id"]]
    other = client.get("/v1/objections", headers=keys.subject).json()
    assert other["total"] == 0
    refused = client.get(f"/v1/objections/{objection['id']}", headers=keys.subject)
    assert refused.status_code == 403
    assert client.get(f"/v1/objections/{objection['id']}", headers=owner).status_code == 200
    assert client.get("/v1/objections/999999", headers=keys.admin).status_code == 404


def test_a_subject_cannot_object_to_another_entitys_record(
    client: TestClient, keys: Keys, penalty: Penalty
) -> None:
    assert penalty.uscc != keys.enterprise.uscc
    others = client.post("/v1/objections", json=body(penalty), headers=keys.subject)
    assert others.status_code == 403
    assert others.json()["detail"][0]["rule"] == "own_subject"
    disguised = client.post(
        "/v1/objections",
        json={**body(penalty), "uscc": keys.enterprise.uscc},
        headers=keys.subject,
    )
    assert disguised.status_code == 403
    assert disguised.json()["detail"][0] == {
        "field": "record_id",
        "rule": "own_record",
        "message": disguised.json()["detail"][0]["message"],
    }


def test_bad_objections_name_the_field_and_rule(
    client: TestClient, services: Services, keys: Keys, penalty: Penalty
) -> None:
    subject, admin = subject_key(services, penalty.uscc), keys.admin
    missing = client.post(
        "/v1/objections", json={**body(penalty), "record_id": "不存在的文号"}, headers=subject
    )
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "record_id"
    assert missing.json()["detail"][0]["rule"] == "exists"
    table = client.post(
        "/v1/objections", json={**body(penalty), "record_table": "tax_credit"}, headers=subject
    )
    assert table.status_code == 400
    assert table.json()["detail"][0] == {
        "field": "record_table",
        "rule": "catalog_code",
        "message": table.json()["detail"][0]["message"],
    }
    assert all(name in table.json()["detail"][0]["message"] for name in record_tables())
    empty = client.post("/v1/objections", json={**body(penalty), "statement": ""}, headers=subject)
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["field"] == "statement"
    assert empty.json()["detail"][0]["rule"] == "string_too_short"
    outcome = client.post(
        "/v1/objections/1/resolve", json={"outcome": "撤销", "resolution": "x"}, headers=admin
    )
    assert outcome.status_code == 422
    assert (outcome.json()["detail"][0]["field"], outcome.json()["detail"][0]["rule"]) == (
        "outcome",
        "enum",
    )
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Objection)) == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("post", "/v1/objections", {"subject"}),
        ("get", "/v1/objections", {"subject", "admin"}),
        ("post", "/v1/objections/1/extend", {"admin"}),
        ("post", "/v1/objections/1/resolve", {"admin"}),
    ],
)
def test_roles(client: TestClient, keys: Keys, method: str, path: str, allowed: set[str]) -> None:
    payloads = {
        "/v1/objections": {
            "uscc": keys.enterprise.uscc,
            "record_table": "admin_penalties",
            "record_id": "x",
            "statement": "x",
        },
        "/v1/objections/1/extend": {},
        "/v1/objections/1/resolve": {"outcome": "维持", "resolution": "x"},
    }
    payload = payloads.get(path) if method == "post" else None
    for role in ("underwriter", "regulator", "analyst", "subject", "admin"):
        response = client.request(method, path, json=payload, headers=getattr(keys, role))
        if role in allowed:
            assert response.status_code != 403, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["detail"][0]["field"] == "role"
    assert client.request(method, path, json=payload).status_code == 401


def test_nothing_is_written_when_no_model_can_rescore(
    client: TestClient, services: Services, penalty: Penalty
) -> None:
    services.models = ModelHolder("", "champion")  # no model loaded
    refused = client.post(
        "/v1/objections", json=body(penalty), headers=subject_key(services, penalty.uscc)
    )
    assert refused.status_code == 503
    assert refused.json()["detail"][0]["field"] == "model"
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Objection)) == 0
        assert session.scalar(select(func.count()).select_from(EntityRescore)) == 0


def test_the_query_log_names_the_entity_by_pseudonym(
    client: TestClient, services: Services, penalty: Penalty
) -> None:
    objection = client.post(
        "/v1/objections", json=body(penalty), headers=subject_key(services, penalty.uscc)
    ).json()
    with services.database.session() as session:
        row = session.scalars(select(QueryLog).where(QueryLog.route == "/v1/objections")).one()
    assert row.subject_ref == subject_ref(services.settings.secret, penalty.uscc)
    assert row.outcome.startswith(f"objection={objection['id']}")
    assert row.status == 201


def test_outcomes_are_the_catalog_codes() -> None:
    codes = load_catalog().item("credit_objections").columns["outcome"].codes or {}
    assert {o.value for o in ObjectionOutcome} == set(codes)


def test_a_new_snapshot_gets_the_services_objections_again(
    client: TestClient, services: Services, workspace: Workspace, penalty: Penalty
) -> None:
    subject = subject_key(services, penalty.uscc)
    objection = client.post("/v1/objections", json=body(penalty), headers=subject).json()
    info = workspace.snapshot.info
    with services.database.session() as session:  # a batch snapshot served after it
        newer = ScoreSnapshot(
            file=f"newer-{info.file}",
            as_of=workspace.snapshot.as_of,
            model_version=info.model_version,
            policy_version=info.policy_version,
            rows=info.rows,
            reasons=info.reasons,
            engine=info.engine,
            created=info.created,
        )
        session.add(newer)
        session.flush()
        services.snapshot_id = newer.id
    stale = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert stale["provenance"]["rescored"] is False  # the batch knows nothing of it
    with services.database.session() as session:
        assert affected_entities(services, session) == {penalty.uscc}
        again = reapply(services, session)
        assert [r.uscc for r in again] == [penalty.uscc]
        assert reapply(services, session) == []  # once per snapshot
    fresh = client.get(f"/v1/entities/{penalty.uscc}/score", headers=subject).json()
    assert fresh["provenance"]["rescore_cause"] == f"snapshot:{newer.id}"
    first = client.get(f"/v1/objections/{objection['id']}", headers=subject).json()
    assert first["status"] == "open"
    assert view_value(services, penalty.uscc) == (
        workspace.snapshot.view_values(penalty.uscc, [FEATURE])[FEATURE] - 1
    )


def test_a_record_the_warehouse_already_took_out_cannot_be_objected_to(
    client: TestClient, services: Services, workspace: Workspace
) -> None:
    uscc, case_no = rows(
        workspace,
        "SELECT p.uscc, p.case_no FROM credit_repairs r "
        "JOIN admin_penalties p ON p.case_no = r.record_id "
        "JOIN entities e ON e.uscc = p.uscc "
        "WHERE r.record_table = 'admin_penalties' AND r.decision = '批准' ORDER BY 1, 2 LIMIT 1",
    )[0]
    refused = client.post(
        "/v1/objections",
        json={
            "uscc": uscc,
            "record_table": "admin_penalties",
            "record_id": case_no,
            "statement": "x",
        },
        headers=subject_key(services, uscc),
    )
    assert refused.status_code == 409
    assert refused.json()["detail"][0]["rule"] == "in_force"


def test_concurrent_objections_to_one_record_open_one(
    client: TestClient, services: Services, penalty: Penalty
) -> None:
    subject = subject_key(services, penalty.uscc)

    def raise_one(_: int) -> int:
        return client.post("/v1/objections", json=body(penalty), headers=subject).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(raise_one, range(4)))
    assert statuses == [201, 409, 409, 409]
    with services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Objection)) == 1
        assert session.scalar(select(func.count()).select_from(EntityRescore)) == 1
