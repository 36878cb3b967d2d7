"""信易贷 pre-approval (双查询) and 信易批 / 信易租 eligibility."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.common import Schema
from api.schemas.scores import DecisionReason, Identity, Provenance, ReasonCode
from api.services.consent import Purpose


class PreApprovalRequest(Schema):
    """A bank's 信易贷 pre-approval query: the entity and, optionally, its PBOC report.

    The target group is not a field: it decides the limit and the discount, so it is derived
    from the registered facts and flags of the view (the policy's ``target_groups``), never
    claimed by the caller.
    """

    uscc: str = Field(description="统一社会信用代码 (GB 32100-2015)", max_length=40)
    purpose: Literal[Purpose.LOAN_APPROVAL] = Field(
        Purpose.LOAN_APPROVAL,
        description="查询用途：预授信即贷款审批（查询原因 02）/ a pre-approval is a "
        "loan-approval query (inquiry reason 02)",
    )
    pboc_report: dict[str, Any] | None = Field(
        None,
        description=(
            '银行持有的人行征信报告（经授权查询）: ``{"accounts": [{"account_id", '
            '"status_24m"}]}``, 24 symbols a month string (N 1-7 * # / C G D Z B M A). '
            "It can only worsen the decision (双查询)."
        ),
        examples=[{"accounts": [{"account_id": "A1", "status_24m": "NNNNNNNNNNNNNNNNNNNNNNNN"}]}],
    )


class TargetGroupInfo(Schema):
    """The 信易贷 target group the entity falls in, with its terms."""

    group: str = Field(
        description="individual_business | agricultural | young_entrepreneur | small_micro | other"
    )
    zh: str
    max_limit: float = Field(description="该组最高额度（元）/ the group's maximum limit, yuan")
    rate_discount_bp: float = Field(description="该组利率优惠（基点）/ the group's discount, bp")


class PbocCheck(Schema):
    """What the bank's PBOC report showed (only what the bank itself sent)."""

    accounts: int = Field(ge=0)
    worst_bucket: int = Field(ge=0, le=7, description="24个月最差逾期档 (0 = never late)")
    finding: str = Field(description="pboc_clean | pboc_refer | pboc_decline")


class PreApprovalResponse(Schema):
    """The 信易贷 pre-approval: decision, limit and discount, and why."""

    identity: Identity
    provenance: Provenance
    policy_version: str = Field(description="the policy the decision was made under")
    pd: float = Field(description="12个月违约概率 / calibrated 12-month PD")
    score: int
    grade: str
    target_group: TargetGroupInfo
    decision: Literal["approve", "refer", "decline"]
    limit: int = Field(ge=0, description="建议额度（元）/ suggested limit, yuan")
    rate_discount_bp: float = Field(ge=0, description="利率优惠（基点）/ rate discount, bp")
    decision_reasons: list[DecisionReason] = Field(description="the deciding reasons first")
    overrides: list[DecisionReason] = Field(description="联合奖惩 / joint rewards and punishments")
    pboc: PbocCheck | None = Field(description="absent when no PBOC report was supplied")
    xinyipi: bool = Field(description="信易批 容缺受理 eligibility")
    xinyizu: bool = Field(description="信易租 deposit-free lease eligibility")
    reasons: list[ReasonCode] = Field(description="the entity's top risk reasons")


class Incentive(Schema):
    """Eligibility for one 信易+ incentive and its basis."""

    eligible: bool
    basis: Literal["grade", "red_list", "punished", "supervision_class"] = Field(
        description=(
            "grade: the grade is (or is not) among the eligible grades; red_list: a 守信红名单 "
            "entry makes it eligible whatever the grade; punished: a 失信 list withholds it; "
            "supervision_class: the class (D) withholds it"
        )
    )
    eligible_grades: list[str]
    reasons: list[DecisionReason]


class EligibilityResponse(Schema):
    """信易批 (容缺受理) and 信易租 (deposit-free lease) eligibility of an entity."""

    uscc: str
    provenance: Provenance
    policy_version: str
    grade: str
    supervision_class: str
    xinyipi: Incentive = Field(description="信易批：容缺受理 / accepted with papers missing")
    xinyizu: Incentive = Field(description="信易租：免押金租赁 / deposit-free lease")
    overrides: list[DecisionReason]
