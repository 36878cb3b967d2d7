"""信用分类监管 / the supervision list (JSON, CSV, summary) and the served scoring policy."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.supervision import PolicyResponse, SupervisionPage, SupervisionSummary
from api.security import Permission
from api.services import supervision
from api.services.policy_view import policy_view
from api.services.scores import served

router = APIRouter(prefix="/v1", tags=["supervision 信用分类监管"], responses=ERRORS)


def _invalid(problems: list[tuple[str, str, str]]) -> RequestValidationError:
    """A 422 like FastAPI's own: one item per (field, rule, message)."""
    return RequestValidationError(
        [
            {"loc": ("query", field), "type": rule, "msg": message}
            for field, rule, message in problems
        ]
    )


async def supervision_filters(
    services: ServicesDep,
    district: Annotated[
        str | None, Query(description="区县代码 (GB/T 2260, current), e.g. 330302", max_length=20)
    ] = None,
    industry: Annotated[
        str | None,
        Query(description="行业门类 (GB/T 4754-2017 section letter), e.g. C", max_length=20),
    ] = None,
    supervision_class: Annotated[
        str | None, Query(description="信用分类监管类别 A–D", max_length=20)
    ] = None,
    grade: Annotated[
        str | None, Query(description="master-scale grade, e.g. AA", max_length=20)
    ] = None,
) -> supervision.Filters:
    """The list's filters; values outside their allowed sets are a 422 listing those sets.

    A coroutine: it only compares strings, so it runs on the event loop (no thread hop).
    """
    given = {
        "district": district,
        "industry": industry,
        "supervision_class": supervision_class,
        "grade": grade,
    }
    problems = [
        (field, "enum", f"Input should be one of: {', '.join(allowed)}")
        for field, allowed in supervision.allowed_filters(services.policy).items()
        if given[field] is not None and given[field] not in allowed
    ]
    if problems:
        raise _invalid(problems)
    return supervision.Filters(**given)


FiltersDep = Annotated[supervision.Filters, Depends(supervision_filters)]


async def _page_size(services: ServicesDep, size: Annotated[int, Query(ge=1)] = 50) -> int:
    limit = services.settings.page_size_max
    if size > limit:
        message = f"Input should be less than or equal to {limit}"
        raise _invalid([("size", "less_than_equal", message)])
    return size


def _outcome(filters: supervision.Filters, total: int) -> str:
    parts: dict[str, Any] = {k: v for k, v in vars(filters).items() if v is not None}
    return " ".join([f"total={total}", *(f"{k}={v}" for k, v in parts.items())])


@router.get(
    "/supervision",
    summary="信用分类监管名单 / the supervision list",
    description=(
        "Every scored entity's supervision class, sampling ratio and inspections a year, with "
        "its register facts; filter by district, industry, class and grade; sorted by class "
        "(D, the highest risk, first), then USCC. No PD or PBOC detail; a 个体工商户's name "
        "is masked (it may hold its operator's name)."
    ),
)
def supervision_list(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.SUPERVISION)],
    filters: FiltersDep,
    size: Annotated[int, Depends(_page_size)],
    page: Annotated[int, Query(ge=1)] = 1,
) -> SupervisionPage:
    now = supervision.current(services, session)
    rows = now.select(filters)
    start = (page - 1) * size
    snapshot = served(services)
    request.state.outcome = _outcome(filters, len(rows))
    return SupervisionPage(
        page=page,
        size=size,
        total=len(rows),
        as_of=snapshot.as_of,
        snapshot=snapshot.info.file,
        rows=supervision.page_rows(now, rows[start : start + size]),
    )


@router.get(
    "/supervision.csv",
    summary="导出信用分类监管名单 / export the supervision list as CSV",
    description="Every row matching the filters, as CSV (UTF-8 with BOM, for Excel), streamed.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "the CSV file"}},
)
def supervision_csv(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.SUPERVISION)],
    filters: FiltersDep,
) -> StreamingResponse:
    now = supervision.current(services, session)
    rows = now.select(filters)
    snapshot = served(services)
    request.state.outcome = _outcome(filters, len(rows))
    name = f"supervision_{snapshot.as_of.isoformat()}_{dt.date.today().isoformat()}.csv"
    return StreamingResponse(
        supervision.csv_chunks(now, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/supervision/summary",
    summary="信用分类监管统计 / counts of the supervision list",
    description="Counts by class, grade, class × grade, district and industry (filters apply).",
)
def supervision_summary(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.SUPERVISION)],
    filters: FiltersDep,
) -> SupervisionSummary:
    now = supervision.current(services, session)
    out = supervision.summary(now, now.matching(filters))
    request.state.outcome = _outcome(filters, out.total)
    return out


@router.get(
    "/policy",
    summary="评分与监管政策 / the served scoring policy",
    description=(
        "The served policy version; the master scale (grade → PD band → score band); grade → "
        "supervision class → sampling ratio and inspections a year; 联合奖惩 overrides; "
        "信易贷 cut-offs, target groups, limits and discounts; 信易批 and 信易租 grades; the "
        "policy file's notes with the sources it cites."
    ),
)
def policy(
    request: Request,
    services: ServicesDep,
    key: Annotated[KeyInfo, Permitted(Permission.POLICY)],
) -> PolicyResponse:
    request.state.outcome = f"policy={services.policy.version}"
    return policy_view(services)
