"""Service persistence: SQLAlchemy 2 tables, sessions and Alembic migrations."""

from api.db.migrate import downgrade, upgrade
from api.db.session import Database
from api.db.tables import (
    ApiKey,
    Base,
    Consent,
    EntityRescore,
    InquiryRecord,
    Objection,
    PolicyVersion,
    QueryLog,
    Repair,
    ScoreSnapshot,
)

__all__ = [
    "ApiKey",
    "Base",
    "Consent",
    "Database",
    "EntityRescore",
    "InquiryRecord",
    "Objection",
    "PolicyVersion",
    "QueryLog",
    "Repair",
    "ScoreSnapshot",
    "downgrade",
    "upgrade",
]
