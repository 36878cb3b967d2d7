"""Consent (授权) before a natural person's data is queried, and the inquiry record it leaves.

征信业管理条例 第十八条: querying a person's credit information needs their written consent
for an agreed purpose. A consent names the subject (stored as its pseudonym), the
institution it authorises, the purpose and the period. A query by an institution with a
purpose listed in `PURPOSES` leaves a PBOC-style query record (查询记录, PH01 reason codes,
DOMAIN.md §3.4) that the subject sees in their own report.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.tables import Consent, InquiryRecord
from api.errors import ConsentRequired, ServiceError


class Purpose(StrEnum):
    LOAN_APPROVAL = "loan_approval"
    POST_LOAN = "post_loan"
    GUARANTEE = "guarantee"
    CREDIT_REVIEW = "credit_review"


#: purpose → (PBOC query reason code, its Chinese name): DOMAIN.md §3.4
PURPOSES: dict[Purpose, tuple[str, str]] = {
    Purpose.LOAN_APPROVAL: ("02", "贷款审批"),
    Purpose.POST_LOAN: ("01", "贷后管理"),
    Purpose.GUARANTEE: ("08", "担保资格审查"),
    Purpose.CREDIT_REVIEW: ("25", "资信审查"),
}
#: the longest consent accepted, in days (a loan's approval and post-loan life)
MAX_CONSENT_DAYS = 5 * 366


def check_period(valid_from: dt.date, valid_to: dt.date) -> None:
    if valid_to < valid_from:
        raise ServiceError("valid_to", "after_valid_from", "the consent ends before it starts")
    if (valid_to - valid_from).days > MAX_CONSENT_DAYS:
        raise ServiceError(
            "valid_to", "max_period", f"a consent lasts at most {MAX_CONSENT_DAYS} days"
        )


def find_consent(
    session: Session, subject_ref: str, institution: str, purpose: Purpose, day: dt.date
) -> int | None:
    """The id of a consent in force on ``day`` for this subject, institution and purpose."""
    consent_id: int | None = session.scalar(
        select(Consent.id)
        .where(
            Consent.subject_ref == subject_ref,
            Consent.institution == institution,
            Consent.purpose == purpose.value,
            Consent.valid_from <= day,
            Consent.valid_to >= day,
            Consent.revoked_at.is_(None),
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )
    return consent_id


def require_consent(
    session: Session, subject_ref: str, institution: str, purpose: Purpose, day: dt.date
) -> int:
    """`find_consent`, or `ConsentRequired` (403) naming the purpose."""
    consent_id = find_consent(session, subject_ref, institution, purpose, day)
    if consent_id is None:
        raise ConsentRequired(
            "consent", "recorded",
            f"no consent of this natural person for {institution} to query for "
            f"{purpose.value} on {day.isoformat()}",
        )  # fmt: skip
    return consent_id


def record_inquiry(
    session: Session, subject_ref: str, institution: str, purpose: Purpose, request_id: str,
    day: dt.date,
) -> None:  # fmt: skip
    """The subject's PBOC-style query record of an institution's query."""
    code, reason = PURPOSES[purpose]
    session.add(
        InquiryRecord(
            subject_ref=subject_ref,
            inquired_on=day,
            institution=institution,
            reason_code=code,
            reason=reason,
            query_id=request_id,
        )
    )
