"""Creating and revoking API keys (`wzcredit keys create --role R`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from api.db.session import Database
from api.db.tables import ApiKey
from api.errors import NotFound, ServiceError
from api.security import Role, key_hash, new_key
from features.identifiers import is_valid_resident_id, validate_uscc


@dataclass(frozen=True)
class CreatedKey:
    key: str  # shown once
    prefix: str
    role: Role
    institution: str


def normalise_subject(subject_id: str, field: str = "subject_id") -> str:
    """A valid resident ID as it is, anything else checked as a USCC (naming the failed check)."""
    value = subject_id.strip().upper()
    if is_valid_resident_id(value):
        return value
    return validate_uscc(value, field)


def create_key(
    database: Database, role: Role | str, institution: str, *, subject_id: str | None = None,
    label: str = "",
) -> CreatedKey:  # fmt: skip
    """A new key for ``role``; a subject key is bound to its own USCC or resident ID."""
    try:
        role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ServiceError("role", "choice", f"one of {choices}; got {role!r}") from None
    if role is Role.SUBJECT and not subject_id:
        raise ServiceError("subject_id", "required_for_subject", "a subject key names its subject")
    if role is not Role.SUBJECT and subject_id:
        raise ServiceError("subject_id", "subject_only", "only subject keys name a subject")
    subject = normalise_subject(subject_id) if subject_id else None
    key, prefix = new_key()
    with database.session() as session:
        session.add(
            ApiKey(
                prefix=prefix,
                key_hash=key_hash(key),
                role=role.value,
                institution=institution,
                subject_id=subject,
                label=label,
            )
        )
    return CreatedKey(key, prefix, role, institution)


def revoke_key(database: Database, prefix: str) -> None:
    with database.session() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if key is None:
            raise NotFound("prefix", "exists", "no API key with this prefix")
        key.revoked_at = dt.datetime.now(dt.UTC)
