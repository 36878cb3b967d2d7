"""An entity's score as each role may see it: access, consent, masking, reasons, logging.

The score is the served snapshot's row, unless the entity was scored again since (after an
objection or a repair changed its records: `entity_rescores`), in which case the newest
rescore on the served snapshot wins.

Rescores are rare, and looking for one was the dearest part of a score request (a query,
and on SQLite a release of the GIL that the request thread then waits to take back). Each
process keeps the set of entities that have any rescore on the served snapshot
(`RescoredIndex`): an entity in it is looked up exactly, one outside it is served from the
snapshot. The set is reloaded after any write to ``entity_rescores`` in this process (seen
at once), when the request's own session has written, and every `RESCORED_TTL_SECONDS`:
another worker process's *first* rescore of an entity reaches this one within that time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy import Engine, bindparam, event, select
from sqlalchemy.orm import Session

from api.db.session import Database
from api.db.tables import EntityRescore
from api.deps import KeyInfo
from api.errors import Forbidden, ServiceError, Unavailable
from api.schemas.scores import (
    DecisionReason,
    Identity,
    Lending,
    Provenance,
    ReasonCode,
    ScoreResponse,
)
from api.security import Role, mask_business_name, mask_name, mask_resident_id, subject_ref
from api.services.consent import Purpose, find_consent, record_inquiry, require_consent
from api.services.directory import EntityFacts
from api.services.snapshots import LoadedSnapshot
from api.services.workdays import today as china_today
from api.state import Services
from features.identifiers import validate_resident_id, validate_uscc
from scoring.decisions import reason_text
from scoring.reasons import ReasonCodeTable, describe_reason

if TYPE_CHECKING:
    from features.view.metadata import FeatureSpec

#: roles that see the bank's side (信易贷 decision, limit, rate); others see supervision only
LENDING_ROLES = frozenset({Role.UNDERWRITER, Role.SUBJECT})
#: reason sources hidden from a role (a regulator sees no PBOC account detail)
HIDDEN_SOURCES: dict[Role, frozenset[str]] = {Role.REGULATOR: frozenset({"pboc"})}

_RESCORES = EntityRescore.__table__.c
#: the newest rescore of an entity on a snapshot: one prepared Core statement (no ORM load)
NEWEST_RESCORE = (
    select(_RESCORES.result, _RESCORES.cause)
    .where(_RESCORES.uscc == bindparam("uscc"), _RESCORES.snapshot_id == bindparam("snapshot"))
    .order_by(_RESCORES.id.desc())
    .limit(1)
)
#: every entity with a rescore on a snapshot
RESCORED = select(_RESCORES.uscc).where(_RESCORES.snapshot_id == bindparam("snapshot")).distinct()
#: how long a process trusts its set of rescored entities without a write of its own
RESCORED_TTL_SECONDS = 1.0

#: bumped by every write to entity_rescores in this process (any engine, ORM or Core)
_writes = itertools.count(1)
_generation = [0]
#: ``Session.info`` / ``Connection.info`` key: it wrote to entity_rescores
_WROTE_RESCORE = "wzcredit.rescored"


def _bump() -> None:
    _generation[0] = next(_writes)


def _watch_statement(
    connection: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
) -> None:
    if "entity_rescores" not in statement:
        return
    written = context is not None and (context.isinsert or context.isupdate or context.isdelete)
    if written or statement.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"}:
        connection.info[_WROTE_RESCORE] = True
        _bump()


def _watch_end(connection: Any) -> None:
    if connection.info.pop(_WROTE_RESCORE, False):
        _bump()  # again once the write is committed (or rolled back)


def _watch_flush(session: Session, _context: Any) -> None:
    if any(isinstance(o, EntityRescore) for o in (*session.new, *session.dirty, *session.deleted)):
        session.info[_WROTE_RESCORE] = True


def _watch_orm_execute(state: Any) -> None:
    table = getattr(state.statement, "table", None)
    if (state.is_insert or state.is_update or state.is_delete) and table is EntityRescore.__table__:
        state.session.info[_WROTE_RESCORE] = True


def _watch_session_end(session: Session) -> None:
    if session.info.pop(_WROTE_RESCORE, False):
        _bump()  # after the commit: a set reloaded meanwhile may have missed it


event.listen(Engine, "after_cursor_execute", _watch_statement)
event.listen(Engine, "commit", _watch_end)
event.listen(Engine, "rollback", _watch_end)
event.listen(Session, "after_flush", _watch_flush)
event.listen(Session, "do_orm_execute", _watch_orm_execute)
event.listen(Session, "after_commit", _watch_session_end)
event.listen(Session, "after_rollback", _watch_session_end)


def _own_rescore(session: Session) -> bool:
    """The session has written (or holds unflushed) rescores: sets read elsewhere miss them."""
    if session.info.get(_WROTE_RESCORE):
        return True
    return any(isinstance(o, EntityRescore) for o in (*session.new, *session.dirty))


class RescoredIndex:
    """Per process and snapshot: the entities that have a rescore (see the module's text)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: weakref.WeakKeyDictionary[
            Database, dict[int | None, tuple[int, float, frozenset[str]]]
        ] = weakref.WeakKeyDictionary()

    def may_be_rescored(
        self, database: Database, session: Session, snapshot_id: int | None, uscc: str
    ) -> bool:
        """False only when ``uscc`` surely has no rescore on ``snapshot_id``."""
        if _own_rescore(session):
            return True
        entry = self._sets.get(database, {}).get(snapshot_id)
        if entry is None or entry[0] != _generation[0] or entry[1] < time.monotonic():
            generation = _generation[0]
            found = frozenset(session.scalars(RESCORED, {"snapshot": snapshot_id}))
            entry = (generation, time.monotonic() + RESCORED_TTL_SECONDS, found)
            with self._lock:
                self._sets.setdefault(database, {})[snapshot_id] = entry
        return uscc in entry[2]


RESCORED_INDEX = RescoredIndex()


@dataclass(frozen=True)
class ReasonLookup:
    """The reason code table and feature metadata as dicts, built once per process."""

    codes: ReasonCodeTable
    feature_of: dict[str, str]  # code → feature
    spec_of: dict[str, FeatureSpec]  # feature → its metadata


@cache
def reason_lookup() -> ReasonLookup:
    from features.view import feature_specs  # noqa: PLC0415
    from scoring.reasons import default_reason_codes  # noqa: PLC0415

    codes = default_reason_codes()
    return ReasonLookup(
        codes=codes,
        feature_of={e.code: e.feature for e in codes.codes},
        spec_of={s.name: s for s in feature_specs()},
    )


def served(services: Services) -> LoadedSnapshot:
    if services.snapshot is None:
        raise Unavailable("snapshot", "loaded", services.snapshot_error or "no snapshot loaded")
    return services.snapshot


def scored_row(
    services: Services, session: Session, uscc: str
) -> tuple[dict[str, Any], str | None]:
    """The entity's current score row and, if it was rescored, why."""
    snapshot = served(services)
    snapshot_id = services.snapshot_id
    if not RESCORED_INDEX.may_be_rescored(services.database, session, snapshot_id, uscc):
        return snapshot.score_row(uscc), None
    rescore = session.execute(NEWEST_RESCORE, {"uscc": uscc, "snapshot": snapshot_id}).first()
    if rescore is not None:
        return dict(rescore.result), str(rescore.cause)
    return snapshot.score_row(uscc), None


@dataclass(frozen=True)
class Access:
    """What the caller may see of one entity, decided once per request."""

    consent_id: int | None
    unmasked: bool


def check_own(key: KeyInfo, services: Services, uscc: str) -> None:
    """A subject key sees its own entity, or the 个体工商户 it operates, only."""
    if key.role is not Role.SUBJECT:
        return
    own = key.subject_id == uscc or uscc in services.directory.businesses_of(key.subject_id or "")
    if not own:
        raise Forbidden("uscc", "own_subject", "a subject key sees its own records only")


def decide_access(
    services: Services, session: Session, key: KeyInfo, facts: EntityFacts | None,
    purpose: Purpose | None, request: Request, today: dt.date,
) -> Access:  # fmt: skip
    """Consent and masking for one entity query; records the inquiry and the log fields."""
    if facts is not None:
        check_own(key, services, facts.uscc)
    if key.role is Role.SUBJECT:
        return Access(None, unmasked=True)
    person = facts is not None and facts.natural_person
    if key.role is not Role.UNDERWRITER:
        return Access(None, unmasked=False)
    if purpose is None:
        raise ServiceError("purpose", "required", "an underwriter states the purpose of a query")
    consent_id = None
    if facts is not None:
        # a 个体工商户's data is its operator's: the operator's consent is needed
        subject = facts.legal_rep_id if person else facts.uscc
        ref = subject_ref(services.settings.secret, subject)
        request.state.subject_ref = ref  # logged whether or not the query is allowed
        request.state.purpose = purpose.value
        if person:
            consent_id = require_consent(session, ref, key.institution, purpose, today)
        else:
            consent_id = find_consent(session, ref, key.institution, purpose, today)
        request.state.consent_id = consent_id
        record_inquiry(session, ref, key.institution, purpose, request.state.request_id, today)
    request.state.purpose = purpose.value
    return Access(consent_id, unmasked=consent_id is not None)


def identity(facts: EntityFacts | None, uscc: str, unmasked: bool) -> Identity:
    if facts is None:
        return Identity(uscc=uscc, name=None, entity_type=None, industry=None, district=None,
                        legal_rep_id=None, legal_rep_name=None, masked=True)  # fmt: skip
    person_id = facts.legal_rep_id if unmasked else mask_resident_id(facts.legal_rep_id)
    person_name = facts.legal_rep_name if unmasked else mask_name(facts.legal_rep_name)
    # a 个体工商户's name may hold its operator's name: masked as the supervision list does
    name = facts.name if unmasked or not facts.natural_person else mask_business_name(facts.name)
    return Identity(
        uscc=uscc, name=name, entity_type=facts.entity_type, industry=facts.industry,
        district=facts.district, legal_rep_id=person_id, legal_rep_name=person_name,
        masked=not unmasked,
    )  # fmt: skip


def _decision_reasons(codes: list[str] | None, services: Services) -> list[DecisionReason]:
    out = []
    for code in codes or []:
        text = reason_text(code, services.policy)
        out.append(DecisionReason(code=code, zh=text.zh, en=text.en))
    return out


def reasons_of(
    row: dict[str, Any], snapshot: LoadedSnapshot, uscc: str, role: Role
) -> list[ReasonCode]:
    """The row's stored reasons with the entity's values from the view, as the role may see."""
    lookup = reason_lookup()
    hidden = HIDDEN_SOURCES.get(role, frozenset())
    out: list[ReasonCode] = []
    k = 1
    while f"reason_{k}_code" in row:
        code, k = row[f"reason_{k}_code"], k + 1
        feature = lookup.feature_of.get(code) if code else None
        if feature is None:
            continue
        spec = lookup.spec_of[feature]
        if spec.source in hidden:
            continue
        rank = k - 1
        # a rescored row carries its own values; a snapshot row takes them from its view
        value_key = f"reason_{rank}_value"
        value = (
            row[value_key] if value_key in row
            else snapshot.view_values(uscc, [feature]).get(feature)
        )  # fmt: skip
        reason = describe_reason(
            rank, code, row[f"reason_{rank}_contribution"], value, specs=(spec,),
            codes=lookup.codes,
        )  # fmt: skip
        out.append(ReasonCode(rank=reason.rank, code=reason.code, feature=feature,
                              source=spec.source, contribution=reason.contribution,
                              value=reason.value, zh=reason.zh, en=reason.en))  # fmt: skip
    return out


def score_response(
    services: Services, row: dict[str, Any], cause: str | None, ident: Identity, role: Role
) -> ScoreResponse:
    snapshot = served(services)
    info = snapshot.info
    lending = None
    if role in LENDING_ROLES:
        lending = Lending(
            target_group=str(row["target_group"]), decision=str(row["decision"]),
            limit=int(row["limit"]), rate_discount_bp=float(row["rate_discount_bp"]),
            reasons=_decision_reasons(row.get("decision_reasons"), services),
        )  # fmt: skip
    return ScoreResponse(
        identity=ident,
        provenance=Provenance(
            as_of=snapshot.as_of,
            snapshot=info.file,
            model_version=str(row.get("model_version", info.model_version)),
            policy_version=str(row.get("policy_version", info.policy_version)),
            rescored=cause is not None,
            rescore_cause=cause,
        ),
        pd=float(row["pd"]),
        score=int(row["score"]),
        grade=str(row["grade"]),
        supervision_class=str(row["supervision_class"]),
        sampling_ratio=float(row["sampling_ratio"]),
        inspections_per_year=float(row["inspections_per_year"]),
        overrides=_decision_reasons(row.get("overrides"), services),
        xinyipi=bool(row["xinyipi"]),
        xinyizu=bool(row["xinyizu"]),
        lending=lending,
        reasons=reasons_of(row, snapshot, ident.uscc, role),
    )


def entity_score(
    services: Services, session: Session, key: KeyInfo, uscc: str, purpose: Purpose | None,
    request: Request, today: dt.date | None = None,
) -> ScoreResponse:  # fmt: skip
    """GET /v1/entities/{uscc}/score."""
    code = validate_uscc(uscc, "uscc")
    facts = services.directory.entities.get(code)
    if facts is None:
        served(services).score_row(code)  # 404 unless scored (a directory-less service)
    access = decide_access(services, session, key, facts, purpose, request, today or china_today())
    if key.role is not Role.UNDERWRITER:
        request.state.subject_ref = subject_ref(services.settings.secret, code)
    row, cause = scored_row(services, session, code)
    request.state.outcome = f"grade={row['grade']} class={row['supervision_class']}"
    return score_response(services, row, cause, identity(facts, code, access.unmasked), key.role)


def person_scores(
    services: Services, session: Session, key: KeyInfo, resident_id: str, purpose: Purpose | None,
    request: Request, today: dt.date | None = None,
) -> list[ScoreResponse]:  # fmt: skip
    """GET /v1/persons/{resident_id}/scores: the 个体工商户 this person operates."""
    person = validate_resident_id(resident_id, "resident_id")
    ref = subject_ref(services.settings.secret, person)
    request.state.subject_ref = ref
    day = today or china_today()
    if key.role is Role.SUBJECT:
        if key.subject_id != person:
            raise Forbidden("resident_id", "own_subject", "a subject key sees its own records only")
        unmasked = True
    else:
        if purpose is None:
            raise ServiceError(
                "purpose", "required", "an underwriter states the purpose of a query"
            )
        request.state.purpose = purpose.value
        consent_id = require_consent(session, ref, key.institution, purpose, day)
        request.state.consent_id = consent_id
        record_inquiry(session, ref, key.institution, purpose, request.state.request_id, day)
        unmasked = True
    out = []
    for uscc in services.directory.businesses_of(person):
        if not served(services).has(uscc):
            continue
        row, cause = scored_row(services, session, uscc)
        facts = services.directory.entities[uscc]
        out.append(score_response(services, row, cause, identity(facts, uscc, unmasked), key.role))
    request.state.outcome = f"businesses={len(out)}"
    return out
