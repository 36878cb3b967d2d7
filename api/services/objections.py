"""Objections (异议): raise, list, extend, resolve; the record is not used while one is open.

浙江省公共信用信息管理条例 第三十、三十一条 (DOMAIN.md §5.1): the credit office settles an
objection within 5 working days and may extend the term once, to at most 20 working days
in all; the periods are the scoring policy's ``remedies``. A subject objects to a record of
its own entity (or of a 个体工商户 it operates); the operator (admin) extends and resolves.
Raising and resolving rescore the entities the record belongs to (`api.services.rescore`),
in the same transaction: if the rescore fails, the objection is not raised either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from api.db.tables import Objection, Repair
from api.deps import KeyInfo
from api.errors import Conflict, Forbidden, NotFound, ServiceError
from api.schemas.objections import ObjectionResponse
from api.security import Role
from api.services.records import (
    REMOVING_OUTCOMES,
    ObjectionOutcome,
    ObjectionStatus,
    Record,
    RecordStore,
    RepairStatus,
    belongs_to,
    entities_of,
    own_entities,
)
from api.services.rescore import lock_entities, rescore
from api.services.scores import check_own
from api.services.workdays import add_working_days, working_days_between
from api.state import Services
from features.identifiers import validate_uscc


def check_page(services: Services, page: int, size: int) -> int:
    """The row offset of a page; `ServiceError` when ``size`` exceeds the maximum."""
    if size > services.settings.page_size_max:
        raise ServiceError("size", "max", f"at most {services.settings.page_size_max} a page")
    return (page - 1) * size


def own_record(services: Services, key: KeyInfo, uscc: str, table: str, record_id: str) -> Record:
    """The record a subject names, if it is a record of its own entity ``uscc``.

    403 when ``uscc`` is not the caller's or the record is another entity's; 404 when the
    entity or the record does not exist; 400 for a table objections cannot name.
    """
    check_own(key, services, uscc)
    facts = services.directory.entity(uscc)
    record = RecordStore(services.settings.warehouse).find(table, record_id)
    if not belongs_to(record, facts):
        raise Forbidden("record_id", "own_record", "the record is not a record of this entity")
    return record


def removed_for_good(services: Services, session: Session, record: Record) -> bool:
    """Whether the record was already taken out for good: by an objection (更正, 删除) or an
    approved repair, through the service or delivered to the warehouse."""
    by_objection = session.scalar(
        select(Objection.id)
        .where(
            Objection.record_table == record.table,
            Objection.record_id == record.record_id,
            Objection.outcome.in_([o.value for o in REMOVING_OUTCOMES]),
        )
        .limit(1)
    )
    by_repair = session.scalar(
        select(Repair.id)
        .where(
            Repair.record_table == record.table,
            Repair.record_id == record.record_id,
            Repair.status == RepairStatus.APPROVED,
        )
        .limit(1)
    )
    if by_objection is not None or by_repair is not None:
        return True
    store = RecordStore(services.settings.warehouse)
    return bool(store.removed_by_warehouse(record.table, [record.record_id]))


def to_response(objection: Objection, day: dt.date) -> ObjectionResponse:
    status = ObjectionStatus(objection.status)
    return ObjectionResponse(
        id=objection.id,
        uscc=objection.uscc,
        record_table=objection.record_table,
        record_id=objection.record_id,
        statement=objection.statement,
        raised_on=objection.raised_on,
        due_on=objection.due_on,
        working_days=working_days_between(objection.raised_on, objection.due_on),
        extended=objection.extended,
        status=status,
        overdue=status is ObjectionStatus.OPEN and objection.due_on < day,
        resolved_on=objection.resolved_on,
        outcome=ObjectionOutcome(objection.outcome) if objection.outcome else None,
        resolution=objection.resolution,
    )


def raise_objection(
    services: Services,
    session: Session,
    key: KeyInfo,
    uscc: str,
    table: str,
    record_id: str,
    statement: str,
    day: dt.date,
) -> Objection:
    """A subject's objection to a record of its own entity; the entities it belongs to are
    rescored without it."""
    code = validate_uscc(uscc, "uscc")
    record = own_record(services, key, code, table, record_id)
    entities = entities_of(record, services.directory)
    lock_entities(session, entities)
    remedies = services.policy.remedies
    objection = Objection(
        uscc=code,
        record_table=table,
        record_id=record.record_id,
        statement=statement,
        raised_on=day,
        due_on=add_working_days(day, remedies.objection_working_days),
        extended=False,
        status=ObjectionStatus.OPEN,
        raised_by=key.id,
    )
    session.add(objection)
    # written first, checked after: the write holds the lock under which the checks see every
    # committed objection (SQLite's write lock; PostgreSQL's advisory lock above)
    session.flush()
    pending = session.scalar(
        select(Objection.id)
        .where(
            Objection.record_table == table,
            Objection.record_id == record.record_id,
            Objection.status == ObjectionStatus.OPEN,
            Objection.id != objection.id,
        )
        .limit(1)
    )
    if pending is not None:
        raise Conflict(
            "record_id", "one_open_objection", f"objection {pending} on this record is still open"
        )
    if removed_for_good(services, session, record):
        raise Conflict("record_id", "in_force", "the record was already taken out")
    rescore(services, session, entities, f"objection:{objection.id}:open")
    return objection


def get_objection(
    services: Services,
    session: Session,
    key: KeyInfo,
    objection_id: int,
    *,
    for_update: bool = False,
) -> Objection:
    """One objection; a subject sees its own entities' only (403)."""
    query = select(Objection).where(Objection.id == objection_id)
    objection = session.scalar(query.with_for_update() if for_update else query)
    if objection is None:
        raise NotFound("objection_id", "exists", "no objection with this id")
    check_own(key, services, objection.uscc)
    return objection


def list_objections(
    services: Services,
    session: Session,
    key: KeyInfo,
    *,
    status: ObjectionStatus | None,
    overdue: bool,
    uscc: str | None,
    page: int,
    size: int,
    day: dt.date,
) -> tuple[Sequence[Objection], int]:
    """A page of objections (newest first; overdue ones by deadline) and their total.

    A subject sees its own entities' objections; the operator sees all. ``overdue`` keeps
    the open ones past their deadline.
    """
    offset = check_page(services, page, size)
    where: list[ColumnElement[bool]] = []
    if key.role is Role.SUBJECT:
        where.append(Objection.uscc.in_(own_entities(services.directory, key.role, key.subject_id)))
    if uscc is not None:
        where.append(Objection.uscc == validate_uscc(uscc, "uscc"))
    if status is not None:
        where.append(Objection.status == status)
    if overdue:
        where += [Objection.status == ObjectionStatus.OPEN, Objection.due_on < day]
    order = (Objection.due_on, Objection.id) if overdue else (Objection.id.desc(),)
    total = session.scalar(select(func.count()).select_from(Objection).where(*where)) or 0
    rows = session.scalars(
        select(Objection).where(*where).order_by(*order).offset(offset).limit(size)
    ).all()
    return rows, total


def _open(objection: Objection) -> None:
    if objection.status != ObjectionStatus.OPEN:
        raise Conflict("status", "open", f"objection {objection.id} is already resolved")


def extend_objection(
    services: Services,
    session: Session,
    key: KeyInfo,
    objection_id: int,
    total_working_days: int | None,
    day: dt.date,
) -> Objection:
    """Extend an open objection's term once, to at most the policy's maximum in all."""
    remedies = services.policy.remedies
    objection = get_objection(services, session, key, objection_id, for_update=True)
    _open(objection)
    if objection.extended:
        raise Conflict("extended", "once", "the term of an objection is extended once only")
    if objection.due_on < day:
        raise Conflict("due_on", "not_passed", "the term has already run out: resolve it")
    total = total_working_days or remedies.objection_max_working_days
    current = working_days_between(objection.raised_on, objection.due_on)
    if total > remedies.objection_max_working_days:
        raise ServiceError(
            "total_working_days",
            "max_working_days",
            f"at most {remedies.objection_max_working_days} working days in all "
            f"({remedies.objection_source})",
        )
    if total <= current:
        raise ServiceError(
            "total_working_days",
            "longer",
            f"an extension runs past the current {current} working days",
        )
    objection.due_on = add_working_days(objection.raised_on, total)
    objection.extended = True
    session.flush()
    return objection


def resolve_objection(
    services: Services,
    session: Session,
    key: KeyInfo,
    objection_id: int,
    outcome: ObjectionOutcome,
    resolution: str,
    day: dt.date,
) -> Objection:
    """Settle an open objection; 更正 / 删除 keep the record out, 维持 / 标注 bring it back.
    The entities the record belongs to are rescored."""
    objection = get_objection(services, session, key, objection_id, for_update=True)
    _open(objection)
    store = RecordStore(services.settings.warehouse)
    try:
        entities = entities_of(
            store.find(objection.record_table, objection.record_id), services.directory
        )
    except NotFound:  # the record left the warehouse since: its entity only
        entities = ()
    entities = tuple(sorted({objection.uscc, *entities}))
    lock_entities(session, entities)
    objection.status = ObjectionStatus.RESOLVED
    objection.outcome = outcome.value
    objection.resolution = resolution
    objection.resolved_on = day
    objection.resolved_by = key.id
    session.flush()
    rescore(services, session, entities, f"objection:{objection.id}:{outcome.value}")
    return objection
