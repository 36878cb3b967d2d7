"""The query log (查询日志, 征信业管理条例 第二十二条) as the platform operator reads it."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Page, Schema


class QueryLogEntry(Schema):
    """One logged request: who (key), when, whom (pseudonym), why and the result."""

    id: int
    at: dt.datetime = Field(description="UTC")
    request_id: str
    key_id: int | None
    role: str | None
    institution: str | None
    method: str
    route: str = Field(description="the route template, never the raw path")
    subject_ref: str | None = Field(description="HMAC pseudonym of the subject, never an ID")
    purpose: str | None
    consent_id: int | None
    status: int
    outcome: str


class QueryLogPage(Page):
    """A page of the query log, newest first."""

    rows: list[QueryLogEntry]
