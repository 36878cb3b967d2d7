"""查询日志 / the query log, read only (征信业管理条例 第二十二条).

Only GET exists: the log cannot be changed through the API (any other method is a 405), and
the database itself refuses UPDATE and DELETE on it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.audit_log import QueryLogPage
from api.schemas.common import ERRORS, IsoDateTime
from api.security import Permission, Role
from api.services import audit_log

router = APIRouter(prefix="/v1", tags=["audit 查询日志"], responses=ERRORS)


@router.get(
    "/audit",
    summary="查询日志 / the query log",
    description=(
        "Every logged request, newest first: key, role, institution, route template, the "
        "subject's pseudonym, purpose, consent, status and outcome. ``subject`` takes a USCC "
        "or a resident ID and searches its pseudonyms (a 个体工商户's and its operator's); the "
        "identifier itself is not stored. Times carry their offset; ``until`` is exclusive."
    ),
)
def read_audit_log(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.AUDIT_READ)],
    since: Annotated[IsoDateTime | None, Query(description="from (inclusive), with offset")] = None,
    until: Annotated[IsoDateTime | None, Query(description="to (exclusive), with offset")] = None,
    role: Annotated[Role | None, Query(description="the caller's role")] = None,
    route: Annotated[
        str | None,
        Query(description="route template, e.g. /v1/entities/{uscc}/score", max_length=200),
    ] = None,
    status: Annotated[int | None, Query(ge=100, le=599, description="HTTP status")] = None,
    subject: Annotated[str | None, Query(description="USCC or resident ID", max_length=40)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1)] = 50,
) -> QueryLogPage:
    limit = services.settings.page_size_max
    if size > limit:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "size"),
                    "type": "less_than_equal",
                    "msg": f"Input should be less than or equal to {limit}",
                }
            ]
        )
    filters = audit_log.LogFilters(since, until, role, route, status, subject)
    listing, refs = audit_log.read_log(services, session, filters, page, size)
    if refs:
        request.state.subject_ref = refs[0]
    request.state.outcome = f"rows={len(listing.rows)} total={listing.total}"
    return listing
