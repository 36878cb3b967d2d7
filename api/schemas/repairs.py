"""Credit repair (信用修复) applications and decisions."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Page, Schema
from api.schemas.objections import RECORD_ID_FIELD, RECORD_TABLE_FIELD, USCC_FIELD
from api.services.records import RepairStatus


class RepairRequest(Schema):
    """A subject applies to repair one record of its own entity, after correcting the breach."""

    uscc: str = USCC_FIELD
    record_table: str = RECORD_TABLE_FIELD
    record_id: str = RECORD_ID_FIELD
    statement: str = Field(
        min_length=1,
        max_length=4000,
        description="纠正失信行为、履行义务的情况 / how the breach was corrected",
    )


class RepairDecisionRequest(Schema):
    note: str = Field(min_length=1, max_length=4000, description="决定说明 / the decision's note")


class RepairResponse(Schema):
    id: int
    uscc: str
    record_table: str
    record_id: str
    statement: str
    applied_on: dt.date
    status: RepairStatus
    decision: str = Field(description="catalog code: 审核中 | 批准 | 驳回")
    decided_on: dt.date | None
    decision_note: str | None


class RepairListResponse(Page):
    items: list[RepairResponse]
