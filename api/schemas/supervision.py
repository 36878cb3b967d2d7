"""信用分类监管: the supervision list and summary, and the served scoring policy."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from api.schemas.common import Page, Schema


class SupervisionRow(Schema):
    """One entity's supervision class and inspection intensity (no PBOC detail).

    A 个体工商户's name may contain its operator's name: it is masked (see
    `api.security.mask_business_name`).
    """

    uscc: str
    name: str | None
    entity_type: str | None
    district: str | None = Field(description="区县代码 (GB/T 2260)")
    district_name: str | None
    industry: str | None = Field(description="行业门类 (GB/T 4754-2017 section)")
    industry_name: str | None
    grade: str
    supervision_class: str = Field(description="信用分类监管类别 A–D")
    sampling_ratio: float = Field(description="双随机抽查比例 / random-inspection sampling ratio")
    inspections_per_year: float
    overrides: list[str] = Field(description="联合奖惩 override codes (texts: GET /v1/policy)")
    rescored: bool = Field(description="重新评分（异议/修复后）/ scored again after a change")


class SupervisionPage(Page):
    """A page of the supervision list, sorted by class (highest risk first), then USCC."""

    as_of: dt.date
    snapshot: str
    rows: list[SupervisionRow]


class CountItem(Schema):
    code: str | None = Field(description="the district or industry code (null: not registered)")
    name: str | None
    count: int = Field(ge=0)


class SupervisionSummary(Schema):
    """Counts of the (filtered) supervision list for the console's charts."""

    as_of: dt.date
    snapshot: str
    total: int = Field(ge=0)
    by_class: dict[str, int]
    by_grade: dict[str, int]
    by_class_grade: dict[str, dict[str, int]] = Field(description="class → grade → count")
    by_district: list[CountItem]
    by_industry: list[CountItem]


class ScoreScaleOut(Schema):
    base_score: float
    base_odds: float
    pdo: float = Field(description="points to double the odds")
    min_score: float
    max_score: float
    pd_floor: float


class MasterScaleBand(Schema):
    """A grade: its PD band ``(pd_above, pd_max]`` and the scores that band gives.

    ``score_from`` is the score at ``pd_max`` (the band's lowest); ``score_to`` is the score at
    ``pd_above`` (the previous band's ``pd_max``, which belongs to that band) or the top of
    the scale. The grade follows the PD, not the rounded score.
    """

    grade: str
    zh: str
    pd_above: float
    pd_max: float
    score_from: float
    score_to: float
    supervision_class: str


class SupervisionClassOut(Schema):
    supervision_class: str
    grades: list[str]
    zh: str
    en: str
    sampling_ratio: float
    inspections_per_year: float


class TargetGroupOut(Schema):
    group: str
    zh: str
    flags: list[str]
    entity_types: list[str]
    max_limit: float
    rate_discount_bp: float


class PreApprovalRulesOut(Schema):
    approve_max_pd: float
    refer_max_pd: float
    approve_full_limit_pd: float
    min_limit_share: float
    limit_step: float
    refer_on_pboc_status: int
    decline_on_pboc_status: int
    pboc_refer_symbols: list[str]
    pboc_decline_symbols: list[str]
    grade_rate_discount_bp: dict[str, float]
    target_groups: list[TargetGroupOut]


class OverridesOut(Schema):
    punish_flags: list[str]
    punish_class: str
    reward_flags: list[str]
    reward_rate_discount_bp: float
    reward_xinyipi: bool
    reward_xinyizu: bool


class ReasonTextOut(Schema):
    zh: str
    en: str


class PolicyResponse(Schema):
    """The served scoring policy: master scale, supervision classes, 信易+ terms.

    ``notes`` carries, per section, the policy file's own comments above it, verbatim: the
    sources it cites (e.g. 国市监信发〔2022〕6号 and the county ratios behind the classes).
    """

    version: str
    sha256: str = Field(description="SHA-256 of the served policy file's exact text")
    score: ScoreScaleOut
    master_scale: list[MasterScaleBand]
    classes: list[SupervisionClassOut]
    overrides: OverridesOut
    pre_approval: PreApprovalRulesOut
    xinyipi_grades: list[str]
    xinyizu_grades: list[str]
    decision_reasons: dict[str, ReasonTextOut]
    notes: dict[str, str] = Field(description="section → the policy file's comments (sources)")
