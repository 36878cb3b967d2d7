"""The service's activity of a year (`api.services.activity`), on SQLite and PostgreSQL.

Rows are written straight into a migrated service database, some inside the year and some
just outside it (China time for query instants), and the aggregates must count exactly the
ones inside.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from api.db.migrate import upgrade
from api.db.session import Database
from api.db.tables import ApiKey, Objection, QueryLog, Repair
from api.security import Role
from api.services.activity import PREAPPROVAL_ROUTE, service_activity
from api.services.keys import create_key
from api.services.workdays import add_working_days

YEAR = 2025
UTC = dt.UTC


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


def _query(at: dt.datetime, route: str, purpose: str | None, status: int, outcome: str = "",
           key_id: int | None = None) -> QueryLog:  # fmt: skip
    return QueryLog(at=at, request_id=str(uuid.uuid4()), key_id=key_id, method="GET",
                    route=route, purpose=purpose, status=status, outcome=outcome)  # fmt: skip


def _objection(key: int, raised: dt.date, resolved: dt.date | None, due_days: int = 5) -> Objection:
    return Objection(
        uscc="91330302MA2AAAAAAA", record_table="admin_penalties", record_id="X", statement="s",
        raised_on=raised, due_on=add_working_days(raised, due_days), extended=due_days > 5,
        status="resolved" if resolved else "open", resolved_on=resolved,
        outcome="删除" if resolved else None, raised_by=key,
    )  # fmt: skip


def _repair(key: int, applied: dt.date, status: str, decided: dt.date | None) -> Repair:
    return Repair(uscc="91330302MA2AAAAAAA", record_table="admin_penalties", record_id="Y",
                  statement="s", applied_on=applied, status=status, decided_on=decided,
                  applied_by=key)  # fmt: skip


def test_service_activity_counts_the_year_only(database: Database) -> None:
    create_key(database, Role.ADMIN, "市信用办")
    score = "/v1/entities/{uscc}/score"
    with database.session() as session:
        key = session.scalars(select(ApiKey.id)).one()
        session.add_all([
            _query(dt.datetime(YEAR, 3, 1, 9, tzinfo=UTC), score, "loan_approval", 200, key_id=key),
            _query(dt.datetime(YEAR, 3, 2, 9, tzinfo=UTC), score, "post_loan", 200),
            _query(dt.datetime(YEAR, 3, 3, 9, tzinfo=UTC), score, None, 403),
            _query(dt.datetime(YEAR, 5, 1, tzinfo=UTC), PREAPPROVAL_ROUTE, "loan_approval", 200,
                   "decision=approve limit=300000"),
            _query(dt.datetime(YEAR, 5, 2, tzinfo=UTC), PREAPPROVAL_ROUTE, "loan_approval", 200,
                   "decision=decline limit=0"),
            _query(dt.datetime(YEAR, 5, 3, tzinfo=UTC), PREAPPROVAL_ROUTE, "loan_approval", 403,
                   "error:purpose:consent"),
            # 2024-12-31 17:00 UTC is already 2025-01-01 in China: counted
            _query(dt.datetime(YEAR - 1, 12, 31, 17, tzinfo=UTC), score, "guarantee", 200),
            # 2025-12-31 16:30 UTC is 2026-01-01 00:30 in China: not counted
            _query(dt.datetime(YEAR, 12, 31, 16, 30, tzinfo=UTC), score, "loan_approval", 200),
        ])  # fmt: skip
        session.add_all([
            _objection(key, dt.date(YEAR, 3, 3), dt.date(YEAR, 3, 5)),  # on time
            _objection(key, dt.date(YEAR, 3, 3), dt.date(YEAR, 4, 20)),  # late
            _objection(key, dt.date(YEAR, 3, 3), dt.date(YEAR, 3, 20), due_days=20),  # extended
            _objection(key, dt.date(YEAR, 12, 1), None),  # open and overdue at the year end
            _objection(key, dt.date(YEAR, 12, 30), None),  # open, not yet due
            _objection(key, dt.date(YEAR - 1, 12, 1), dt.date(YEAR, 1, 3)),  # raised before
            _repair(key, dt.date(YEAR, 2, 3), "approved", dt.date(YEAR, 2, 10)),  # on time
            _repair(key, dt.date(YEAR, 2, 3), "rejected", dt.date(YEAR, 6, 1)),  # late
            _repair(key, dt.date(YEAR, 11, 3), "under_review", None),
            _repair(key, dt.date(YEAR + 1, 1, 5), "under_review", None),  # next year
        ])  # fmt: skip

    with database.session() as session:
        activity = service_activity(session, YEAR)

    assert activity.year == YEAR
    assert activity.queries == 7
    assert activity.queries_by_purpose == {"loan_approval": 4, "post_loan": 1, "": 1,
                                           "guarantee": 1}  # fmt: skip
    assert activity.queries_by_route == {score: 4, PREAPPROVAL_ROUTE: 3}
    assert activity.queries_by_status == {200: 5, 403: 2}
    assert activity.preapprovals_by_decision == {"approve": 1, "decline": 1}
    assert activity.purpose_names["loan_approval"] == "贷款审批"
    assert activity.objections_raised == 5
    assert (activity.objections_resolved, activity.objections_resolved_on_time) == (4, 2)
    assert activity.objections_open_overdue == 1
    assert (activity.repairs_applied, activity.repairs_decided) == (3, 2)
    assert activity.repairs_decided_on_time == 1
    assert activity.repairs_by_status == {"approved": 1, "rejected": 1, "under_review": 1}


def test_an_empty_service_reports_no_activity(database: Database) -> None:
    with database.session() as session:
        activity = service_activity(session, YEAR)
    assert activity.queries == 0
    assert activity.queries_by_purpose == {}
    assert activity.objections_raised == activity.repairs_applied == 0
