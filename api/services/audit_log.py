"""Reading the query log (征信业管理条例 第二十二条): the platform operator's view.

Read only: the log is written by `api.services.audit.Ledger` and the database refuses
UPDATE and DELETE on it (triggers of migration 0001). A subject named in a filter, a USCC or
a resident ID, is turned into its pseudonym (`api.security.subject_ref`) and never stored.
The pseudonyms searched are the subject's own and those under which queries about it are
logged too: a 个体工商户's data is its operator's, so an underwriter's query of the business
is logged under the operator's pseudonym, another role's under the business's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.db.tables import QueryLog
from api.errors import ServiceError
from api.schemas.audit_log import QueryLogEntry, QueryLogPage
from api.security import Role, subject_ref
from api.state import Services
from features.errors import IdentifierError
from features.identifiers import normalise_code, resident_id_error, uscc_error


@dataclass(frozen=True)
class LogFilters:
    """Filters of the query log; datetimes carry their offset."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    role: Role | None = None
    route: str | None = None
    status: int | None = None
    subject: str | None = None


def subject_refs(services: Services, subject: str) -> list[str]:
    """Pseudonyms under which queries about ``subject`` (a USCC or resident ID) are logged.

    The subject's own pseudonym comes first, then those of its operator or businesses.
    """
    code = normalise_code(subject)
    as_uscc, as_person = uscc_error(code), resident_id_error(code)
    if as_uscc is not None and as_person is not None:
        raise IdentifierError(
            "subject",
            "uscc_or_resident_id",
            f"neither a USCC (failed {as_uscc}) nor a resident ID (failed {as_person})",
        )
    related: set[str] = set()
    if as_uscc is None:
        facts = services.directory.entities.get(code)
        if facts is not None and facts.natural_person:
            related.add(facts.legal_rep_id)
    if as_person is None:
        related.update(services.directory.businesses_of(code))
    secret = services.settings.secret
    own = subject_ref(secret, code)
    return [own, *sorted({subject_ref(secret, s) for s in related} - {own})]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _filtered(statement: Select[Any], filters: LogFilters, refs: list[str] | None) -> Select[Any]:
    if filters.since is not None:
        statement = statement.where(QueryLog.at >= _utc(filters.since))
    if filters.until is not None:
        statement = statement.where(QueryLog.at < _utc(filters.until))
    if filters.role is not None:
        statement = statement.where(QueryLog.role == filters.role.value)
    if filters.route is not None:
        statement = statement.where(QueryLog.route == filters.route)
    if filters.status is not None:
        statement = statement.where(QueryLog.status == filters.status)
    if refs is not None:
        statement = statement.where(QueryLog.subject_ref.in_(refs))
    return statement


def _entry(row: QueryLog) -> QueryLogEntry:
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=dt.UTC)  # SQLite
    return QueryLogEntry(
        id=row.id,
        at=at,
        request_id=row.request_id,
        key_id=row.key_id,
        role=row.role,
        institution=row.institution,
        method=row.method,
        route=row.route,
        subject_ref=row.subject_ref,
        purpose=row.purpose,
        consent_id=row.consent_id,
        status=row.status,
        outcome=row.outcome,
    )


def read_log(
    services: Services, session: Session, filters: LogFilters, page: int, size: int
) -> tuple[QueryLogPage, list[str] | None]:
    """A page of the log, newest first, and the subject pseudonyms searched (if any).

    ``until`` is exclusive; a window that ends before it starts is refused.
    """
    if filters.since and filters.until and filters.until <= filters.since:
        raise ServiceError("until", "after_since", "until must be later than since")
    refs = subject_refs(services, filters.subject) if filters.subject else None
    total = session.scalar(_filtered(select(func.count()).select_from(QueryLog), filters, refs))
    rows = session.scalars(
        _filtered(select(QueryLog), filters, refs)
        .order_by(QueryLog.at.desc(), QueryLog.id.desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    listing = QueryLogPage(page=page, size=size, total=total or 0, rows=[_entry(r) for r in rows])
    return listing, refs
