"""信用修复 / credit repair: a subject applies; the operator approves or rejects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.repairs import (
    RepairDecisionRequest,
    RepairListResponse,
    RepairRequest,
    RepairResponse,
)
from api.security import Permission, subject_ref
from api.services import repairs
from api.services.records import RepairStatus
from api.services.workdays import Today

router = APIRouter(prefix="/v1", tags=["repairs 信用修复"], responses=ERRORS)

RepairId = Annotated[int, Path(description="修复申请编号 / repair id", ge=1, le=2**31 - 1)]


@router.post(
    "/repairs",
    status_code=status.HTTP_201_CREATED,
    summary="申请信用修复 / apply for credit repair",
    description=(
        "After correcting the breach, a subject applies to repair a record of its own entity. "
        "Refused (409, naming the rule) for an entity on the serious dishonesty list "
        "(浙江省公共信用信息管理条例 第三十二条), for record tables the catalog does not let "
        "be repaired, and for a penalty before its minimum publicity period has passed."
    ),
)
def apply_for_repair(
    body: RepairRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.REPAIR_APPLY)],
    day: Today,
) -> RepairResponse:
    request.state.subject_ref = subject_ref(services.settings.secret, body.uscc)
    repair = repairs.apply_for_repair(
        services, session, key, body.uscc, body.record_table, body.record_id, body.statement, day
    )
    request.state.outcome = f"repair={repair.id} under_review"
    return repairs.to_response(repair)


@router.get(
    "/repairs",
    summary="信用修复申请列表 / list repair applications",
    description="A subject sees its own entities' applications; the operator sees all.",
)
def list_repairs(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.REPAIR_READ)],
    status: Annotated[
        RepairStatus | None, Query(description="under_review | approved | rejected")
    ] = None,
    uscc: Annotated[str | None, Query(description="one entity only", max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> RepairListResponse:
    if key.subject_id:
        request.state.subject_ref = subject_ref(services.settings.secret, key.subject_id)
    rows, total = repairs.list_repairs(
        services, session, key, status=status, uscc=uscc, page=page, size=size
    )
    request.state.outcome = f"repairs={len(rows)} total={total}"
    return RepairListResponse(
        page=page, size=size, total=total, items=[repairs.to_response(r) for r in rows]
    )


@router.get("/repairs/{repair_id}", summary="修复申请详情 / one repair application")
def get_repair(
    repair_id: RepairId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.REPAIR_READ)],
) -> RepairResponse:
    repair = repairs.get_repair(services, session, key, repair_id)
    request.state.subject_ref = subject_ref(services.settings.secret, repair.uscc)
    request.state.outcome = f"repair={repair.id} status={repair.status}"
    return repairs.to_response(repair)


@router.post(
    "/repairs/{repair_id}/approve",
    summary="批准信用修复 / approve a repair",
    description="The record leaves the view and the entity is scored again at once.",
)
def approve_repair(
    repair_id: RepairId,
    body: RepairDecisionRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.REPAIR_DECIDE)],
    day: Today,
) -> RepairResponse:
    repair = repairs.approve_repair(services, session, key, repair_id, body.note, day)
    request.state.subject_ref = subject_ref(services.settings.secret, repair.uscc)
    request.state.outcome = f"repair={repair.id} approved"
    return repairs.to_response(repair)


@router.post("/repairs/{repair_id}/reject", summary="驳回信用修复 / reject a repair")
def reject_repair(
    repair_id: RepairId,
    body: RepairDecisionRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.REPAIR_DECIDE)],
    day: Today,
) -> RepairResponse:
    repair = repairs.reject_repair(services, session, key, repair_id, body.note, day)
    request.state.subject_ref = subject_ref(services.settings.secret, repair.uscc)
    request.state.outcome = f"repair={repair.id} rejected"
    return repairs.to_response(repair)
