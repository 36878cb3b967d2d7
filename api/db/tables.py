"""The service's tables (SQLAlchemy 2 declarative, one class a table).

Identifiers of natural persons: the query log and inquiry records never hold a resident ID;
they hold ``subject_ref``, an HMAC-SHA256 pseudonym of the subject's identifier under the
service secret (`api.security.subject_ref`), which is enough to show a subject every query
about them and to match consents, and useless to anyone reading the log without the secret.
Objections and repairs name the entity (``uscc``) and the record they concern, as the
warehouse's own 异议 / 修复 tables do.

``query_log`` and ``inquiry_records`` are append-only: the migration installs triggers that
refuse UPDATE and DELETE on both, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: constraint names that Alembic can address on every backend
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
#: primary keys that grow without bound: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, dt.datetime: DateTime(timezone=True)}  # noqa: RUF012


class ApiKey(Base):
    """A bearer API key: only its SHA-256 is stored; one role; subjects are bound to one id."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    institution: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str | None] = mapped_column(String(18))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class Consent(Base):
    """A subject's written authorisation (授权) of one institution, for one purpose and period."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_lookup", "subject_ref", "institution", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(64))
    institution: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(String(100))
    recorded_by: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class QueryLog(Base):
    """One row per data query: who (key), when, whom (pseudonym), why, and the result."""

    __tablename__ = "query_log"
    __table_args__ = (Index("ix_query_log_subject", "subject_ref", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    role: Mapped[str | None] = mapped_column(String(16))
    institution: Mapped[str | None] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(200))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(32))
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("consents.id"))
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(200), default="")


class InquiryRecord(Base):
    """A PBOC-style query record (查询记录, PH01) of a subject: a loan-approval query."""

    __tablename__ = "inquiry_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    inquired_on: Mapped[dt.date] = mapped_column(Date)
    institution: Mapped[str] = mapped_column(String(100))
    reason_code: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str] = mapped_column(String(32))
    query_id: Mapped[str] = mapped_column(String(36))


class Objection(Base):
    """An objection (异议) to one public-credit record; the record is not used while open."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    record_table: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(100))
    statement: Mapped[str] = mapped_column(Text)
    raised_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolved_on: Mapped[dt.date | None] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(String(8))
    resolution: Mapped[str | None] = mapped_column(Text)
    raised_by: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Repair(Base):
    """A credit repair (信用修复) application; an approved one removes the record."""

    __tablename__ = "repairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    record_table: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(100))
    statement: Mapped[str] = mapped_column(Text)
    applied_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="under_review", index=True)
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    decision_note: Mapped[str | None] = mapped_column(Text)
    applied_by: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PolicyVersion(Base):
    """Each scoring policy the service has served, with its exact text."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[str] = mapped_column(Text)
    first_served_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ScoreSnapshot(Base):
    """A batch score snapshot the service has served (its provenance, not its rows)."""

    __tablename__ = "score_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    file: Mapped[str] = mapped_column(String(300), unique=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(40))
    policy_version: Mapped[str] = mapped_column(String(40))
    rows: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[bool] = mapped_column(Boolean)
    engine: Mapped[str] = mapped_column(String(16))
    created: Mapped[str] = mapped_column(String(40))
    first_served_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EntityRescore(Base):
    """An entity scored again after its records changed (objection, repair), newest wins."""

    __tablename__ = "entity_rescores"
    __table_args__ = (Index("ix_entity_rescores_uscc", "uscc", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("score_snapshots.id"))
    cause: Mapped[str] = mapped_column(String(60))
    model_version: Mapped[str] = mapped_column(String(40))
    policy_version: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
