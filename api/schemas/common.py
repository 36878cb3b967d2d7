"""Schemas shared by every resource: the error body and pagination."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorItem(Schema):
    field: str = Field(description="出错字段 / the field at fault", examples=["uscc"])
    rule: str = Field(description="违反的规则 / the rule it broke", examples=["uscc_check"])
    message: str = Field(description="说明 / what to fix")


class ErrorResponse(Schema):
    detail: list[ErrorItem]


#: error responses every data endpoint may give, for the OpenAPI document
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "请求不合规则 / a rule of the request is broken"},
    401: {"model": ErrorResponse, "description": "缺少或无效的API密钥 / no valid API key"},
    403: {"model": ErrorResponse, "description": "角色无权或缺少授权 / role or consent missing"},
    404: {"model": ErrorResponse, "description": "不存在 / not found"},
    409: {
        "model": ErrorResponse,
        "description": "与当前状态冲突 / conflicts with the current state",
    },
    422: {"model": ErrorResponse, "description": "字段校验失败 / a field failed validation"},
    503: {"model": ErrorResponse, "description": "模型或评分快照未加载 / not ready"},
}


class Page(Schema):
    page: int = Field(ge=1)
    size: int = Field(ge=1)
    total: int = Field(ge=0)


def _iso_text(value: Any) -> Any:
    """Refuse a bare number where an ISO 8601 time is documented (no Unix timestamps)."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"[\d.+-]+", value)
    ):
        raise ValueError("an ISO 8601 date-time with its offset, e.g. 2026-11-28T08:00:00+08:00")
    return value


#: a date-time with its UTC offset, written as ISO 8601 text (as the OpenAPI document says)
IsoDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
