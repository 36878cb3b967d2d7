"""The subject's own report (征信业管理条例 第十七条: a subject may see their own information).

For a subject key: each entity it is (its USCC) or operates (个体工商户 under its resident
ID), unmasked, with the current score and reasons (`api.services.scores`: the newest
rescore on the served snapshot, else the snapshot's row), the entity's public-credit
records, the objections and repairs raised on them through the service, and the PBOC-style
inquiry records of institutions that queried the subject (who, when, why).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.tables import InquiryRecord, Objection, Repair
from api.deps import KeyInfo
from api.errors import Forbidden
from api.schemas.reports import CreditRecord, InquiryEntry, OwnEntity, OwnReportResponse
from api.security import Role, subject_ref
from api.services import objections, repairs
from api.services.records import RecordStore, own_entities, record_tables
from api.services.scores import identity, score_response, scored_row
from api.state import Services


def _entity(
    services: Services, session: Session, store: RecordStore, uscc: str, day: dt.date
) -> OwnEntity:
    facts = services.directory.entity(uscc)
    ident = identity(facts, uscc, unmasked=True)
    score = None
    if services.snapshot is not None and services.snapshot.has(uscc):
        row, cause = scored_row(services, session, uscc)
        score = score_response(services, row, cause, ident, Role.SUBJECT)
    titles = {name: table.title for name, table in record_tables().items()}
    records = [
        CreditRecord(
            record_table=r.table, title=titles[r.table], record_id=r.record_id, fields=r.fields
        )
        for r in store.of_entity(facts)
    ]
    raised = session.scalars(select(Objection).where(Objection.uscc == uscc).order_by(Objection.id))
    applied = session.scalars(select(Repair).where(Repair.uscc == uscc).order_by(Repair.id))
    return OwnEntity(
        identity=ident,
        score=score,
        records=records,
        objections=[objections.to_response(o, day) for o in raised],
        repairs=[repairs.to_response(r) for r in applied],
    )


def own_report(
    services: Services, session: Session, key: KeyInfo, day: dt.date
) -> OwnReportResponse:
    """GET /v1/me/report: the caller's own report (subject keys only)."""
    if key.role is not Role.SUBJECT or not key.subject_id:
        raise Forbidden("role", "subject", "the own report is for a subject key")
    store = RecordStore(services.settings.warehouse)
    entities = [
        _entity(services, session, store, uscc, day)
        for uscc in own_entities(services.directory, key.role, key.subject_id)
    ]
    ref = subject_ref(services.settings.secret, key.subject_id)
    inquiries = session.scalars(
        select(InquiryRecord)
        .where(InquiryRecord.subject_ref == ref)
        .order_by(InquiryRecord.inquired_on.desc(), InquiryRecord.id.desc())
    )
    return OwnReportResponse(
        subject_id=key.subject_id,
        generated_on=day,
        entities=entities,
        inquiries=[
            InquiryEntry(
                inquired_on=i.inquired_on,
                institution=i.institution,
                reason_code=i.reason_code,
                reason=i.reason,
            )
            for i in inquiries
        ],
    )
