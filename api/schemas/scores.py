"""Entity scores with reason codes (评分与原因码)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Schema


class ReasonCode(Schema):
    """A reason that raised the entity's risk (原因码), with the entity's value."""

    rank: int = Field(ge=1)
    code: str = Field(description="稳定原因码 / stable reason code", examples=["P23"])
    feature: str
    source: str = Field(description="government | pboc | private_lending | entity")
    contribution: float = Field(description="对风险对数几率的贡献 / log-odds added to the risk")
    value: float | str | None
    zh: str
    en: str


class DecisionReason(Schema):
    code: str
    zh: str
    en: str


class Identity(Schema):
    """Who the entity is; a natural person's ID and name are masked unless the caller is the
    subject or an underwriter with consent (征信业管理条例)."""

    uscc: str
    name: str | None
    entity_type: str | None
    industry: str | None
    district: str | None
    legal_rep_id: str | None
    legal_rep_name: str | None
    masked: bool


class Provenance(Schema):
    """Where the score comes from: every score traces to its inputs."""

    as_of: dt.date
    snapshot: str
    model_version: str
    policy_version: str
    rescored: bool = Field(description="重新评分（异议/修复后）/ scored again after a change")
    rescore_cause: str | None = None


class Lending(Schema):
    """信易贷 pre-approval from the batch score (underwriters, subjects)."""

    target_group: str
    decision: str
    limit: int
    rate_discount_bp: float
    reasons: list[DecisionReason]


class ScoreResponse(Schema):
    identity: Identity
    provenance: Provenance
    pd: float | None = Field(description="12个月违约概率 / calibrated 12-month PD")
    score: int
    grade: str
    supervision_class: str = Field(description="信用分类监管类别 A–D")
    sampling_ratio: float = Field(description="双随机抽查比例 / random-inspection sampling ratio")
    inspections_per_year: float
    overrides: list[DecisionReason] = Field(description="联合奖惩 / joint rewards and punishments")
    xinyipi: bool = Field(description="信易批 容缺受理 eligibility")
    xinyizu: bool = Field(description="信易租 deposit-free lease eligibility")
    lending: Lending | None = Field(description="absent for regulators and analysts")
    reasons: list[ReasonCode]


class PersonScoresResponse(Schema):
    """A natural person's businesses (个体工商户 they operate) and their scores."""

    resident_id: str
    scores: list[ScoreResponse]
