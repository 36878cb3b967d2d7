"""本人信用报告 / the subject's own report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.reports import OwnReportResponse
from api.security import Permission, subject_ref
from api.services import reports
from api.services.workdays import Today

router = APIRouter(prefix="/v1", tags=["reports 本人报告"], responses=ERRORS)


@router.get(
    "/me/report",
    summary="本人信用报告 / your own report",
    description=(
        "For a subject key: your entity (or the 个体工商户 you operate) unmasked, the current "
        "score with reasons, the public-credit records, your objections and repair "
        "applications, and every query an institution made about you (who, when, why; "
        "征信业管理条例 第十七条)."
    ),
)
def own_report(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OWN_REPORT)],
    day: Today,
) -> OwnReportResponse:
    if key.subject_id:
        request.state.subject_ref = subject_ref(services.settings.secret, key.subject_id)
    report = reports.own_report(services, session, key, day)
    records = sum(len(e.records) for e in report.entities)
    request.state.outcome = f"entities={len(report.entities)} records={records}"
    return report
