"""Consents (授权) of natural persons."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Schema
from api.services.consent import Purpose


class ConsentRequest(Schema):
    subject_id: str = Field(description="公民身份号码 of the person who consents", max_length=40)
    purpose: Purpose
    valid_from: dt.date
    valid_to: dt.date
    evidence: str = Field(
        min_length=1, max_length=100, description="书面授权书编号 / reference of the signed form"
    )
    institution: str | None = Field(
        None, max_length=100,
        description="被授权机构（数据主体授权时必填）/ the institution authorised (subjects)",
    )  # fmt: skip


class ConsentResponse(Schema):
    id: int
    subject_id: str = Field(description="masked unless the caller is the subject")
    institution: str
    purpose: Purpose
    valid_from: dt.date
    valid_to: dt.date
    evidence: str
