"""异议 / objections: a subject disputes a record; the operator extends and resolves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.objections import (
    ObjectionExtendRequest,
    ObjectionListResponse,
    ObjectionRequest,
    ObjectionResolveRequest,
    ObjectionResponse,
)
from api.security import Permission, subject_ref
from api.services import objections
from api.services.records import ObjectionStatus
from api.services.workdays import Today

router = APIRouter(prefix="/v1", tags=["objections 异议"], responses=ERRORS)

ObjectionId = Annotated[int, Path(description="异议编号 / objection id", ge=1, le=2**31 - 1)]


@router.post(
    "/objections",
    status_code=status.HTTP_201_CREATED,
    summary="提出异议 / object to a record",
    description=(
        "A subject objects to a public-credit record of its own entity (or of a 个体工商户 it "
        "operates). While the objection is open the record is not used: the entity is "
        "scored again at once. The credit office answers within 5 working days, extendable "
        "to 20 (浙江省公共信用信息管理条例 第三十、三十一条)."
    ),
)
def raise_objection(
    body: ObjectionRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OBJECTION_RAISE)],
    day: Today,
) -> ObjectionResponse:
    request.state.subject_ref = subject_ref(services.settings.secret, body.uscc)
    objection = objections.raise_objection(
        services, session, key, body.uscc, body.record_table, body.record_id, body.statement, day
    )
    request.state.outcome = f"objection={objection.id} due={objection.due_on.isoformat()}"
    return objections.to_response(objection, day)


@router.get(
    "/objections",
    summary="异议列表 / list objections",
    description=(
        "A subject sees the objections on its own entities; the operator sees all, and with "
        "`overdue=true` the open ones past their deadline (earliest deadline first)."
    ),
)
def list_objections(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OBJECTION_READ)],
    day: Today,
    status: Annotated[ObjectionStatus | None, Query(description="open | resolved")] = None,
    overdue: Annotated[bool, Query(description="open and past the deadline only")] = False,
    uscc: Annotated[str | None, Query(description="one entity only", max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=10_000)] = 50,
) -> ObjectionListResponse:
    if key.subject_id:
        request.state.subject_ref = subject_ref(services.settings.secret, key.subject_id)
    rows, total = objections.list_objections(
        services,
        session,
        key,
        status=status,
        overdue=overdue,
        uscc=uscc,
        page=page,
        size=size,
        day=day,
    )
    request.state.outcome = f"objections={len(rows)} total={total}"
    return ObjectionListResponse(
        page=page, size=size, total=total, items=[objections.to_response(o, day) for o in rows]
    )


@router.get("/objections/{objection_id}", summary="异议详情 / one objection")
def get_objection(
    objection_id: ObjectionId,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OBJECTION_READ)],
    day: Today,
) -> ObjectionResponse:
    objection = objections.get_objection(services, session, key, objection_id)
    request.state.subject_ref = subject_ref(services.settings.secret, objection.uscc)
    request.state.outcome = f"objection={objection.id} status={objection.status}"
    return objections.to_response(objection, day)


@router.post(
    "/objections/{objection_id}/extend",
    summary="延长办理期限 / extend the term",
    description="Once, to at most 20 working days in all, before the term runs out.",
)
def extend_objection(
    objection_id: ObjectionId,
    body: ObjectionExtendRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OBJECTION_RESOLVE)],
    day: Today,
) -> ObjectionResponse:
    objection = objections.extend_objection(
        services, session, key, objection_id, body.total_working_days, day
    )
    request.state.subject_ref = subject_ref(services.settings.secret, objection.uscc)
    request.state.outcome = f"objection={objection.id} extended due={objection.due_on}"
    return objections.to_response(objection, day)


@router.post(
    "/objections/{objection_id}/resolve",
    summary="办结异议 / resolve an objection",
    description=(
        "更正 or 删除 keep the record out for good; 维持 or 标注 bring it back. The entity "
        "is scored again either way."
    ),
)
def resolve_objection(
    objection_id: ObjectionId,
    body: ObjectionResolveRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.OBJECTION_RESOLVE)],
    day: Today,
) -> ObjectionResponse:
    objection = objections.resolve_objection(
        services, session, key, objection_id, body.outcome, body.resolution, day
    )
    request.state.subject_ref = subject_ref(services.settings.secret, objection.uscc)
    request.state.outcome = f"objection={objection.id} outcome={body.outcome.value}"
    return objections.to_response(objection, day)
