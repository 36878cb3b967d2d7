"""信易贷预授信、信易批、信易租 / 信易贷 pre-approval (双查询) and 信易批 / 信易租 eligibility."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.preapproval import EligibilityResponse, PreApprovalRequest, PreApprovalResponse
from api.security import Permission
from api.services import preapproval
from api.services.consent import Purpose

router = APIRouter(prefix="/v1", tags=["pre-approval 信易贷"], responses=ERRORS)


@router.post(
    "/preapprovals",
    summary="信易贷预授信（双查询）/ 信易贷 pre-approval (double query)",
    description=(
        "Decision (approve / refer / decline), suggested limit and rate discount for one "
        "entity, from its current PD and three-in-one view under the served policy, checked "
        "against the PBOC report the bank holds when one is sent (it can only make the "
        "decision worse). A blacklisted (严重失信) or dishonest-debtor entity is declined "
        "whatever its PD. A 个体工商户 needs its operator's consent for loan approval; every "
        "pre-approval leaves an inquiry record (查询原因 02 贷款审批)."
    ),
)
def create_preapproval(
    body: PreApprovalRequest,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.PREAPPROVAL)],
) -> PreApprovalResponse:
    return preapproval.pre_approve(services, session, key, body, request)


@router.get(
    "/entities/{uscc}/eligibility",
    summary="信易批、信易租资格 / 信易批 and 信易租 eligibility",
    description=(
        "信易批 (容缺受理: accepted with papers missing, on a commitment) and 信易租 "
        "(deposit-free lease), with the basis: the grade, a red list, or the 失信 list or "
        "supervision class that withholds them. Underwriters state the purpose and need a "
        "个体工商户 operator's consent, as for the score."
    ),
)
def entity_eligibility(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.ELIGIBILITY)],
    uscc: Annotated[str, Path(description="统一社会信用代码 (GB 32100-2015)", max_length=40)],
    purpose: Annotated[
        Purpose | None,
        Query(
            description="查询用途（承销人必填）/ purpose of the query (underwriters must give it)"
        ),
    ] = None,
) -> EligibilityResponse:
    return preapproval.eligibility(services, session, key, uscc, purpose, request)
