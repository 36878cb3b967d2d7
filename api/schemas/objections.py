"""Objections (异议) to public-credit records."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Page, Schema
from api.services.records import ObjectionOutcome, ObjectionStatus

USCC_FIELD = Field(
    description="统一社会信用代码 of the entity the record belongs to", max_length=40
)
RECORD_TABLE_FIELD = Field(
    description="记录所在目录项 / catalog table of the record, e.g. admin_penalties",
    min_length=1,
    max_length=40,
)
RECORD_ID_FIELD = Field(
    description="记录编号（该目录项的主键）/ the record's key, e.g. a penalty's case number",
    min_length=1,
    max_length=100,
)


class ObjectionRequest(Schema):
    """A subject objects to one record of its own entity."""

    uscc: str = USCC_FIELD
    record_table: str = RECORD_TABLE_FIELD
    record_id: str = RECORD_ID_FIELD
    statement: str = Field(
        min_length=1, max_length=4000, description="异议理由 / why the record is wrong"
    )


class ObjectionExtendRequest(Schema):
    """The operator extends the term once (浙江省公共信用信息管理条例 第三十一条)."""

    total_working_days: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="延长后的总工作日数（默认为上限20）/ the term in all, in working days "
        "(default: the maximum, 20)",
    )


class ObjectionResolveRequest(Schema):
    outcome: ObjectionOutcome = Field(
        description="处理结果：更正、删除（记录不再使用）、维持、标注（记录恢复使用）/ "
        "更正 or 删除 keep the record out for good; 维持 or 标注 bring it back"
    )
    resolution: str = Field(min_length=1, max_length=4000, description="处理说明 / the answer")


class ObjectionResponse(Schema):
    id: int
    uscc: str
    record_table: str
    record_id: str
    statement: str
    raised_on: dt.date
    due_on: dt.date = Field(description="办结期限 / the deadline (Chinese working days)")
    working_days: int = Field(description="办理期限（工作日）/ the term, in working days")
    extended: bool
    status: ObjectionStatus
    overdue: bool = Field(description="open past its deadline")
    resolved_on: dt.date | None
    outcome: ObjectionOutcome | None
    resolution: str | None


class ObjectionListResponse(Page):
    items: list[ObjectionResponse]
