"""评分 / scores: an entity's score, grade, class and reasons, by USCC or resident ID."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from api.deps import KeyInfo, Permitted, ServicesDep, SessionDep
from api.schemas.common import ERRORS
from api.schemas.scores import PersonScoresResponse, ScoreResponse
from api.security import Permission
from api.services import scores
from api.services.consent import Purpose

router = APIRouter(prefix="/v1", tags=["scores 评分"], responses=ERRORS)

PurposeQuery = Annotated[
    Purpose | None,
    Query(description="查询用途（承销人必填）/ purpose of the query (underwriters must give it)"),
]


@router.get(
    "/entities/{uscc}/score",
    summary="主体评分与原因码 / an entity's score with reasons",
    description=(
        "Score, grade, supervision class and the reasons that raised the risk (TreeSHAP), "
        "from the served snapshot or the entity's latest rescore. 个体工商户 data is its "
        "operator's: an underwriter needs the operator's consent for the stated purpose."
    ),
)
def entity_score(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.SCORE_ENTITY)],
    uscc: Annotated[str, Path(description="统一社会信用代码 (GB 32100-2015)", max_length=40)],
    purpose: PurposeQuery = None,
) -> ScoreResponse:
    return scores.entity_score(services, session, key, uscc, purpose, request)


@router.get(
    "/persons/{resident_id}/scores",
    summary="自然人经营主体评分 / scores of a person's businesses",
    description=(
        "The 个体工商户 a natural person operates, with their scores. Needs the person's "
        "recorded consent (征信业管理条例 第十八条) unless the caller is the person."
    ),
)
def person_scores(
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    key: Annotated[KeyInfo, Permitted(Permission.SCORE_PERSON)],
    resident_id: Annotated[str, Path(description="公民身份号码 (GB 11643-1999)", max_length=40)],
    purpose: PurposeQuery = None,
) -> PersonScoresResponse:
    found = scores.person_scores(services, session, key, resident_id, purpose, request)
    return PersonScoresResponse(resident_id=resident_id.strip().upper(), scores=found)
