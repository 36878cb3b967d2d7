"""Credit repair (信用修复): apply, list, approve, reject; an approved repair removes the record.

A subject applies, after correcting the breach, to repair a record of its own entity
(国家发展改革委令第58号 第三条). Refused with 409, naming the rule:

- ``repairable_table``: the catalog's ``credit_repairs.record_table`` codes do not include
  the record's table (the serious dishonesty list and private loans are not repaired);
- ``not_seriously_dishonest``: the entity is on the serious dishonesty list (严重失信) on the
  day of the application or of the decision: no repair then (浙江省公共信用信息管理条例
  第三十二条);
- ``early_removal_allowed``: a penalty whose publicity cannot end early (吊销, 停产停业, …);
- ``min_publicity``: a penalty before its minimum publicity from the decision date has
  passed (the scoring policy's ``remedies``: 3 months for 一般, 6 for 较重 and 严重, 12 in
  the listed domains, the longer applying);
- ``one_repair`` / ``in_force``: a repair of the record is pending or approved already, or
  an objection took it out for good.

The operator approves or rejects; an approval rescores the entities the record belongs to
(`api.services.rescore`) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from api.db.tables import Objection, Repair
from api.deps import KeyInfo
from api.errors import Conflict, NotFound
from api.schemas.repairs import RepairResponse
from api.security import Role
from api.services.objections import check_page, own_record, removed_for_good
from api.services.records import (
    REMOVING_OUTCOMES,
    REPAIR_DECISIONS,
    Record,
    RecordStore,
    RepairStatus,
    entities_of,
    listed_on,
    own_entities,
    repairable_tables,
)
from api.services.rescore import lock_entities, rescore
from api.services.scores import check_own
from api.state import Services
from features.identifiers import validate_uscc
from features.view.context import months_before
from scoring.policy import Remedies

#: the serious dishonesty list (严重失信主体名单): its entities cannot repair any record
SERIOUS_LIST = "serious_dishonesty"


def earliest_repair_day(penalty: Record, remedies: Remedies) -> dt.date:
    """The first day a repair of an administrative penalty may be applied for: the day after
    its minimum publicity from the decision date (the longer of its severity's and its
    domain's; an unknown severity takes the longest period the policy gives)."""
    by_severity = remedies.repair_min_publicity_months
    severity = by_severity.get(str(penalty.fields.get("severity")), max(by_severity.values()))
    domain = remedies.repair_min_publicity_months_by_domain.get(
        str(penalty.fields.get("domain")), 0
    )
    decided: dt.date = penalty.fields["decided_on"]
    return months_before(decided, -max(severity, domain)) + dt.timedelta(days=1)


def check_penalty(penalty: Record, remedies: Remedies, day: dt.date) -> None:
    """Refuse a penalty that may not (yet) be repaired on ``day``."""
    kind = penalty.fields.get("penalty_type")
    if kind in remedies.repair_excluded_penalty_types:
        raise Conflict(
            "record_id",
            "early_removal_allowed",
            f"the publicity of a {kind} penalty cannot end early: no repair "
            f"({remedies.repair_source})",
        )
    earliest = earliest_repair_day(penalty, remedies)
    if day < earliest:
        raise Conflict(
            "record_id",
            "min_publicity",
            f"the minimum publicity of this penalty runs until the day before "
            f"{earliest.isoformat()}: apply from then ({remedies.repair_source})",
        )


def seriously_dishonest(services: Services, session: Session, uscc: str, day: dt.date) -> bool:
    """Whether the entity is on the serious dishonesty list on ``day``: a listing in force
    that no objection (delivered or through the service) took out for good."""
    store = RecordStore(services.settings.warehouse)
    facts = services.directory.entity(uscc)
    listings = [r for r in store.of_entity(facts, [SERIOUS_LIST]) if listed_on(r, day)]
    if not listings:
        return False
    ids = [r.record_id for r in listings]
    removed = store.removed_by_warehouse(SERIOUS_LIST, ids)
    removed.update(
        session.scalars(
            select(Objection.record_id).where(
                Objection.record_table == SERIOUS_LIST,
                Objection.record_id.in_(ids),
                Objection.outcome.in_([o.value for o in REMOVING_OUTCOMES]),
            )
        )
    )
    return any(i not in removed for i in ids)


def check_not_seriously_dishonest(
    services: Services, session: Session, uscc: str, day: dt.date
) -> None:
    if seriously_dishonest(services, session, uscc, day):
        raise Conflict(
            "uscc",
            "not_seriously_dishonest",
            "the entity is on the serious dishonesty list (严重失信主体名单): credit "
            "repair is not available (浙江省公共信用信息管理条例 第三十二条)",
        )


def to_response(repair: Repair) -> RepairResponse:
    status = RepairStatus(repair.status)
    return RepairResponse(
        id=repair.id,
        uscc=repair.uscc,
        record_table=repair.record_table,
        record_id=repair.record_id,
        statement=repair.statement,
        applied_on=repair.applied_on,
        status=status,
        decision=REPAIR_DECISIONS[status],
        decided_on=repair.decided_on,
        decision_note=repair.decision_note,
    )


def apply_for_repair(
    services: Services,
    session: Session,
    key: KeyInfo,
    uscc: str,
    table: str,
    record_id: str,
    statement: str,
    day: dt.date,
) -> Repair:
    """A subject's application to repair a record of its own entity (see the module rules)."""
    code = validate_uscc(uscc, "uscc")
    record = own_record(services, key, code, table, record_id)
    if table not in repairable_tables():
        allowed = ", ".join(sorted(repairable_tables()))
        raise Conflict(
            "record_table",
            "repairable_table",
            f"records of {table} cannot be repaired; repairable: {allowed}",
        )
    check_not_seriously_dishonest(services, session, code, day)
    if table == "admin_penalties":
        check_penalty(record, services.policy.remedies, day)
    lock_entities(session, entities_of(record, services.directory))
    repair = Repair(
        uscc=code,
        record_table=table,
        record_id=record.record_id,
        statement=statement,
        applied_on=day,
        status=RepairStatus.UNDER_REVIEW,
        applied_by=key.id,
    )
    session.add(repair)
    session.flush()  # written first, checked after, as for objections
    pending = session.scalar(
        select(Repair.id)
        .where(
            Repair.record_table == table,
            Repair.record_id == record.record_id,
            Repair.status == RepairStatus.UNDER_REVIEW,
            Repair.id != repair.id,
        )
        .limit(1)
    )
    if pending is not None:
        raise Conflict("record_id", "one_repair", f"repair {pending} of this record is pending")
    if removed_for_good(services, session, record):
        raise Conflict("record_id", "in_force", "the record was already taken out")
    return repair


def get_repair(
    services: Services,
    session: Session,
    key: KeyInfo,
    repair_id: int,
    *,
    for_update: bool = False,
) -> Repair:
    """One repair application; a subject sees its own entities' only (403)."""
    query = select(Repair).where(Repair.id == repair_id)
    repair = session.scalar(query.with_for_update() if for_update else query)
    if repair is None:
        raise NotFound("repair_id", "exists", "no repair application with this id")
    check_own(key, services, repair.uscc)
    return repair


def list_repairs(
    services: Services,
    session: Session,
    key: KeyInfo,
    *,
    status: RepairStatus | None,
    uscc: str | None,
    page: int,
    size: int,
) -> tuple[Sequence[Repair], int]:
    """A page of repair applications, newest first, and their total."""
    offset = check_page(services, page, size)
    where: list[ColumnElement[bool]] = []
    if key.role is Role.SUBJECT:
        where.append(Repair.uscc.in_(own_entities(services.directory, key.role, key.subject_id)))
    if uscc is not None:
        where.append(Repair.uscc == validate_uscc(uscc, "uscc"))
    if status is not None:
        where.append(Repair.status == status)
    total = session.scalar(select(func.count()).select_from(Repair).where(*where)) or 0
    rows = session.scalars(
        select(Repair).where(*where).order_by(Repair.id.desc()).offset(offset).limit(size)
    ).all()
    return rows, total


def _pending(services: Services, session: Session, key: KeyInfo, repair_id: int) -> Repair:
    repair = get_repair(services, session, key, repair_id, for_update=True)
    if repair.status != RepairStatus.UNDER_REVIEW:
        raise Conflict("status", "under_review", f"repair {repair.id} was already decided")
    return repair


def _decide(repair: Repair, key: KeyInfo, status: RepairStatus, note: str, day: dt.date) -> None:
    repair.status = status
    repair.decided_on = day
    repair.decided_by = key.id
    repair.decision_note = note


def approve_repair(
    services: Services, session: Session, key: KeyInfo, repair_id: int, note: str, day: dt.date
) -> Repair:
    """Approve: the record leaves the view; the entities it belongs to are rescored."""
    repair = _pending(services, session, key, repair_id)
    check_not_seriously_dishonest(services, session, repair.uscc, day)
    try:
        record = RecordStore(services.settings.warehouse).find(
            repair.record_table, repair.record_id
        )
        entities = tuple(sorted({repair.uscc, *entities_of(record, services.directory)}))
    except NotFound:  # the record left the warehouse since: its entity only
        entities = (repair.uscc,)
    lock_entities(session, entities)
    _decide(repair, key, RepairStatus.APPROVED, note, day)
    session.flush()
    rescore(services, session, entities, f"repair:{repair.id}")
    return repair


def reject_repair(
    services: Services, session: Session, key: KeyInfo, repair_id: int, note: str, day: dt.date
) -> Repair:
    """Reject: nothing changes in the entity's records."""
    repair = _pending(services, session, key, repair_id)
    _decide(repair, key, RepairStatus.REJECTED, note, day)
    session.flush()
    return repair
