"""授权 / consents: a natural person's written authorisation, recorded before any query."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status

from api.db.tables import Consent
from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.errors import Forbidden, ServiceError
from api.schemas.common import ERRORS
from api.schemas.consents import ConsentRequest, ConsentResponse
from api.security import Permission, Role, mask_resident_id, subject_ref
from api.services.consent import check_period
from features.identifiers import validate_resident_id

router = APIRouter(prefix="/v1", tags=["consents 授权"], responses=ERRORS)


@router.post(
    "/consents",
    status_code=status.HTTP_201_CREATED,
    summary="记录授权 / record a consent",
    description=(
        "An underwriter records the signed authorisation it holds (for its own institution); "
        "a subject grants one to a named institution. Only natural persons (resident IDs)."
    ),
)
def record_consent(
    body: ConsentRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.CONSENT_WRITE)],
) -> ConsentResponse:
    person = validate_resident_id(body.subject_id, "subject_id")
    check_period(body.valid_from, body.valid_to)
    if key.role is Role.SUBJECT:
        if key.subject_id != person:
            raise Forbidden("subject_id", "own_subject", "a subject consents for themselves only")
        if not body.institution:
            raise ServiceError("institution", "required", "name the institution you authorise")
        institution = body.institution
    else:
        if body.institution and body.institution != key.institution:
            raise Forbidden(
                "institution", "own_institution", "record consents for your own institution"
            )
        institution = key.institution
    ref = subject_ref(services.settings.secret, person)
    consent = Consent(
        subject_ref=ref, institution=institution, purpose=body.purpose.value,
        valid_from=body.valid_from, valid_to=body.valid_to, evidence=body.evidence,
        recorded_by=key.id,
    )  # fmt: skip
    session.add(consent)
    session.flush()
    request.state.subject_ref = ref
    request.state.purpose = body.purpose.value
    request.state.outcome = f"consent={consent.id}"
    shown = person if key.role is Role.SUBJECT else mask_resident_id(person)
    return ConsentResponse(
        id=consent.id, subject_id=shown or "", institution=institution, purpose=body.purpose,
        valid_from=body.valid_from, valid_to=body.valid_to, evidence=body.evidence,
    )  # fmt: skip
