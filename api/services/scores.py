"""An entity's score as each role may see it: access, consent, masking, reasons, logging.

The score is the served snapshot's row, unless the entity was scored again since (after an
objection or a repair changed its records: `entity_rescores`), in which case the newest
rescore on the served snapshot wins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

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
from api.security import Role, mask_name, mask_resident_id, subject_ref
from api.services.consent import Purpose, find_consent, record_inquiry, require_consent
from api.services.directory import EntityFacts
from api.services.snapshots import LoadedSnapshot
from api.state import Services
from features.identifiers import validate_resident_id, validate_uscc
from scoring.decisions import reason_text
from scoring.reasons import describe_reason

#: roles that see the bank's side (信易贷 decision, limit, rate); others see supervision only
LENDING_ROLES = frozenset({Role.UNDERWRITER, Role.SUBJECT})
#: reason sources hidden from a role (a regulator sees no PBOC account detail)
HIDDEN_SOURCES: dict[Role, frozenset[str]] = {Role.REGULATOR: frozenset({"pboc"})}


def served(services: Services) -> LoadedSnapshot:
    if services.snapshot is None:
        raise Unavailable("snapshot", "loaded", services.snapshot_error or "no snapshot loaded")
    return services.snapshot


def scored_row(
    services: Services, session: Session, uscc: str
) -> tuple[dict[str, Any], str | None]:
    """The entity's current score row and, if it was rescored, why."""
    snapshot = served(services)
    rescore = session.scalar(
        select(EntityRescore)
        .where(EntityRescore.uscc == uscc, EntityRescore.snapshot_id == services.snapshot_id)
        .order_by(EntityRescore.id.desc())
        .limit(1)
    )
    if rescore is not None:
        return dict(rescore.result), rescore.cause
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
    return Identity(
        uscc=uscc, name=facts.name, entity_type=facts.entity_type, industry=facts.industry,
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
    from features.view import feature_specs  # noqa: PLC0415
    from scoring.reasons import default_reason_codes  # noqa: PLC0415

    source_of = {s.name: s.source for s in feature_specs()}
    feature_of = {e.code: e.feature for e in default_reason_codes().codes}
    hidden = HIDDEN_SOURCES.get(role, frozenset())
    out: list[ReasonCode] = []
    k = 1
    while f"reason_{k}_code" in row:
        code, k = row[f"reason_{k}_code"], k + 1
        feature = feature_of.get(code) if code else None
        if feature is None or source_of[feature] in hidden:
            continue
        rank = k - 1
        # a rescored row carries its own values; a snapshot row takes them from its view
        value = row.get(f"reason_{rank}_value", snapshot.view_values(uscc, [feature]).get(feature))
        reason = describe_reason(rank, code, row[f"reason_{rank}_contribution"], value)
        out.append(ReasonCode(rank=reason.rank, code=reason.code, feature=feature,
                              source=source_of[feature], contribution=reason.contribution,
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
    access = decide_access(
        services, session, key, facts, purpose, request, today or dt.date.today()
    )
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
    day = today or dt.date.today()
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
