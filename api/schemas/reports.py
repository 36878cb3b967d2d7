"""The subject's own report (本人信用报告): identity, scores, records, objections, repairs
and who queried them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from api.schemas.common import Schema
from api.schemas.objections import ObjectionResponse
from api.schemas.repairs import RepairResponse
from api.schemas.scores import Identity, ScoreResponse


class CreditRecord(Schema):
    """One public-credit record of the entity, as the warehouse holds it."""

    record_table: str = Field(description="目录项 / catalog table, e.g. admin_penalties")
    title: str = Field(description="目录项名称 / e.g. 行政处罚")
    record_id: str
    fields: dict[str, Any] = Field(description="the record's catalog columns")


class InquiryEntry(Schema):
    """A query by an institution (查询记录, PBOC reason codes): who, when, why."""

    inquired_on: dt.date
    institution: str
    reason_code: str
    reason: str


class OwnEntity(Schema):
    """One entity the subject is or operates, with its score and records."""

    identity: Identity
    score: ScoreResponse | None = Field(description="absent when the entity is not scored")
    records: list[CreditRecord]
    objections: list[ObjectionResponse]
    repairs: list[RepairResponse]


class OwnReportResponse(Schema):
    subject_id: str = Field(description="统一社会信用代码 or 公民身份号码, unmasked")
    generated_on: dt.date
    entities: list[OwnEntity]
    inquiries: list[InquiryEntry] = Field(description="newest first")
