"""Government public-credit features (公共信用信息): penalties, lists, tax, arrears, commitments.

Point in time: a penalty or licence exists from its publication date, a listing from its
listing date, a tax grade from its evaluation date, an arrears month from its report date, a
commitment's outcome from its due date. Negative records only count while the law lets them be
used: penalties while publicised (the delivered ``publicity_end_on``, or the policy's period
from the decision) and summary-procedure penalties never (浙江省公共信用信息管理条例 第十一条);
every negative record for at most ``negative_retention_months`` (5 years). Records under an open
objection, or repaired, are removed first (`ViewContext.effective`).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.view.context import ViewContext, months_before
from features.view.metadata import FeatureSpec, Source, counted, flag

S: Source = "government"
#: penalty types that restrict or end the business (no early removal, SAMR Order 45 第十四条)
RESTRICTIVE_PENALTIES = (
    "暂扣许可证",
    "降低资质等级",
    "吊销许可证",
    "限制开展生产经营活动",
    "责令停产停业",
    "责令关闭",
    "限制从业",
)
#: 纳税信用等级 as an ordinal of risk; M (new or no income, score ≥ 70) sits with B
TAX_GRADE_ORDINAL = {"A": 1, "B": 2, "M": 2, "C": 3, "D": 4}

FEATURES: tuple[FeatureSpec, ...] = (
    flag("gov_has_record", S, "有公共信用记录", "has any public-credit record", 0),
    counted("gov_penalties_12m", S, "近12个月行政处罚数（公示期内）", "penalties in force, last 12 months", 1),
    counted("gov_penalties_36m", S, "近36个月行政处罚数（公示期内）", "penalties in force, last 36 months", 1),
    counted("gov_penalties_severe_36m", S, "近36个月较重及严重处罚数", "serious or severe penalties, 36 months", 1),
    counted("gov_penalties_restrictive_36m", S, "近36个月停产停业、吊销等处罚数", "penalties restricting the business, 36 months", 1),
    FeatureSpec("gov_penalty_amount_36m", S, "近36个月罚没金额", "fines and confiscations, 36 months", "yuan", 1),
    FeatureSpec("gov_months_since_penalty", S, "距最近一次处罚月数", "months since the latest penalty in force", "months", -1, fill=None),
    counted("gov_licences_12m", S, "近12个月行政许可数", "administrative licences, last 12 months", 0),
    counted("gov_licences_36m", S, "近36个月行政许可数", "administrative licences, last 36 months", 0),
    flag("gov_blacklisted", S, "列入严重失信主体名单", "on the serious dishonesty list now", 1),
    counted("gov_blacklist_listings_5y", S, "近5年严重失信名单记录数", "serious dishonesty listings, 5 years", 1),
    flag("gov_dishonest_debtor", S, "失信被执行人", "a dishonest judgment debtor now", 1),
    FeatureSpec("gov_dishonest_debtor_amount", S, "失信被执行人执行标的", "amount owed as a dishonest judgment debtor", "yuan", 1),
    counted("gov_dishonest_debtor_listings_5y", S, "近5年失信被执行人记录数", "dishonest-debtor listings, 5 years", 1),
    FeatureSpec("gov_tax_grade", S, "最近纳税信用级别", "latest tax credit grade", "category", 0, "categorical", fill=None),
    FeatureSpec("gov_tax_grade_ordinal", S, "纳税信用级别（A=1…D=4）", "tax credit grade as risk (A=1 … D=4)", "grade", 1, fill=None),
    FeatureSpec("gov_tax_grade_change", S, "纳税信用级别较上年变化", "change of the tax grade on the year before", "grade", 1, fill=None),
    counted("gov_tax_d_grades_3y", S, "近3个年度D级次数", "D grades in the last 3 evaluated years", 1),
    counted("gov_si_arrears_months_12m", S, "近12个月社保欠缴月数", "months of social-insurance arrears, 12 months", 1),
    FeatureSpec("gov_si_arrears_amount_12m", S, "近12个月社保欠缴金额", "social-insurance arrears, 12 months", "yuan", 1),
    FeatureSpec("gov_months_since_si_arrears", S, "距最近社保欠缴月数", "months since the latest arrears month", "months", -1, fill=None),
    flag("gov_abnormal_listed", S, "列入经营异常名录", "on the abnormal operations list now", 1),
    counted("gov_abnormal_listings_5y", S, "近5年经营异常名录记录数", "abnormal-operations listings, 5 years", 1),
    counted("gov_commitments_kept_36m", S, "近36个月信用承诺履行数", "credit commitments kept, 36 months", -1),
    counted("gov_commitments_broken_36m", S, "近36个月信用承诺未履行数", "credit commitments broken, 36 months", 1),
    FeatureSpec("gov_commitments_broken_share", S, "信用承诺未履行比例", "share of due commitments broken, 36 months", "share", 1, fill=None),
    flag("gov_red_listed", S, "列入守信激励名单（红名单）", "on a red list now", -1),
    counted("gov_red_list_honours_5y", S, "近5年守信荣誉数", "red-list honours, 5 years", -1),
    counted("gov_negative_records_36m", S, "近36个月不良记录合计", "negative records in force, 36 months", 1),
)  # fmt: skip


def _keyed(parts: list[ir.Table]) -> ir.Table:
    """Outer-join per-source aggregates (each one row per uscc) into one table."""
    out = parts[0]
    for part in parts[1:]:
        out = out.outer_join(part, out.uscc == part.uscc)
        out = out.mutate(uscc=ibis.coalesce(out.uscc, out.uscc_right)).drop("uscc_right")
    return out


def _penalties(ctx: ViewContext) -> ir.Table:
    p = ctx.effective("admin_penalties", "case_no")
    retention = ibis.literal(months_before(ctx.as_of, ctx.policy.negative_retention_months))
    default_start = ibis.cases(
        *[
            (p.severity == severity, ibis.literal(months_before(ctx.as_of, months)))
            for severity, months in ctx.policy.penalty_publicity_months.items()
        ],
        else_=ibis.literal(months_before(ctx.as_of, 36)),
    )
    publicised = ibis.ifelse(
        p.publicity_end_on.isnull(),
        p.decided_on > default_start,
        p.publicity_end_on >= ctx.as_of_value,
    )
    negative = ctx.known(p.published_on) & publicised & (p.decided_on >= retention)
    if not ctx.policy.summary_procedure_is_negative:
        negative &= p.procedure != "简易"
    p = p.filter(negative)
    in_36 = ctx.within_months(p.decided_on, 36)
    return p.group_by("uscc").agg(
        gov_penalties_12m=p.count(where=ctx.within_months(p.decided_on, 12)),
        gov_penalties_36m=p.count(where=in_36),
        gov_penalties_severe_36m=p.count(where=in_36 & p.severity.isin(["较重", "严重"])),
        gov_penalties_restrictive_36m=p.count(
            where=in_36 & p.penalty_type.isin(list(RESTRICTIVE_PENALTIES))
        ),
        gov_penalty_amount_36m=p.amount.sum(where=in_36),
        gov_months_since_penalty=ctx.months_since(p.decided_on).min(),
    )


def _licences(ctx: ViewContext) -> ir.Table:
    lic = ctx.table("admin_licenses")
    lic = lic.filter(ctx.known(lic.published_on))
    return lic.group_by("uscc").agg(
        gov_licences_12m=lic.count(where=ctx.within_months(lic.decided_on, 12)),
        gov_licences_36m=lic.count(where=ctx.within_months(lic.decided_on, 36)),
    )


def _listings(
    ctx: ViewContext, table: str, key: str, prefix: str, amount: bool = False
) -> ir.Table:
    """Active flag and 5-year count for a list with listed/removed dates."""
    lst = ctx.effective(table, key)
    subject = "uscc" if "uscc" in lst.columns else "subject_id"
    lst = ctx.by_entity(lst, subject) if subject == "subject_id" else lst
    lst = lst.filter(ctx.within_months(lst.listed_on, ctx.policy.negative_retention_months))
    active = ctx.active(lst.listed_on, lst.removed_on)
    metrics: dict[str, ir.Value] = {
        f"{prefix}_now": active.cast("int64").max(),
        f"{prefix}_5y": lst.count(),
    }
    if amount:
        metrics[f"{prefix}_amount"] = lst.amount.sum(where=active)
    return lst.group_by("uscc").agg(**metrics)


def _tax(ctx: ViewContext) -> ir.Table:
    tax = ctx.table("tax_credit")  # objections to tax grades go to the tax bureau itself
    tax = tax.filter(ctx.known(tax.evaluated_on))
    ordinal = ibis.cases(*[(tax.grade == g, v) for g, v in TAX_GRADE_ORDINAL.items()])
    tax = tax.mutate(ordinal=ordinal)
    latest_year = tax.group_by("uscc").agg(latest=tax.year.max())
    t = tax.inner_join(latest_year, "uscc")
    latest = t.filter(t.year == t.latest).select("uscc", grade=t.grade, ordinal=t.ordinal)
    previous = t.filter(t.year == t.latest - 1).select("uscc", previous=t.ordinal)
    d_grades = tax.group_by("uscc").agg(
        gov_tax_d_grades_3y=tax.count(where=(tax.grade == "D") & (tax.year >= ctx.as_of.year - 3))
    )
    out = latest.left_join(previous, "uscc").drop("uscc_right")
    out = out.select(
        "uscc",
        gov_tax_grade=out.grade,
        gov_tax_grade_ordinal=out.ordinal.cast("float64"),
        gov_tax_grade_change=(out.ordinal - out.previous).cast("float64"),
    )
    return out.inner_join(d_grades, "uscc")


def _arrears(ctx: ViewContext) -> ir.Table:
    si = ctx.table("social_insurance_arrears")
    si = si.filter(ctx.known(si.reported_on) & (si.month < ctx.as_of_value))
    last12 = ctx.within_months(si.month, 12)
    return si.group_by("uscc").agg(
        gov_si_arrears_months_12m=si.count(where=last12),
        gov_si_arrears_amount_12m=si.amount_owed.sum(where=last12),
        gov_months_since_si_arrears=ctx.months_since(si.month).min(),
    )


def _commitments(ctx: ViewContext) -> ir.Table:
    c = ctx.effective("credit_commitments", "commitment_id")
    c = c.filter(ctx.known(c.signed_on) & ctx.known(c.due_on) & ctx.within_months(c.due_on, 36))
    kept = c.count(where=c.fulfilled == "已履行")
    broken = c.count(where=c.fulfilled == "未履行")
    return c.group_by("uscc").agg(
        gov_commitments_kept_36m=kept,
        gov_commitments_broken_36m=broken,
        gov_commitments_broken_share=broken.cast("float64") / (kept + broken).nullif(0),
    )


def _red_list(ctx: ViewContext) -> ir.Table:
    red = ctx.table("red_list")
    red = red.filter(ctx.within_months(red.listed_on, 60))
    return red.group_by("uscc").agg(
        gov_red_listed=ctx.active(red.listed_on, red.expires_on).cast("int64").max(),
        gov_red_list_honours_5y=red.count(),
    )


def build(ctx: ViewContext) -> ir.Table:
    """One row per entity with any government record known before ``ctx.as_of``."""
    blacklist = _listings(ctx, "serious_dishonesty", "list_id", "bl")
    debtors = _listings(ctx, "dishonest_debtors", "case_no", "dd", amount=True)
    abnormal = _listings(ctx, "abnormal_operations", "record_id", "ab")
    out = _keyed(
        [
            _penalties(ctx),
            _licences(ctx),
            blacklist,
            debtors,
            _tax(ctx),
            _arrears(ctx),
            abnormal,
            _commitments(ctx),
            _red_list(ctx),
        ]
    )
    zero = ibis.literal(0)
    recent_abnormal = ctx.table("abnormal_operations")
    recent_abnormal = recent_abnormal.filter(ctx.within_months(recent_abnormal.listed_on, 36))
    abnormal_36 = recent_abnormal.group_by("uscc").agg(ab_36m=recent_abnormal.count())
    out = out.left_join(abnormal_36, "uscc").drop("uscc_right")
    out = out.mutate(
        gov_has_record=ibis.literal(1),
        gov_blacklisted=out.bl_now.fill_null(0),
        gov_blacklist_listings_5y=out.bl_5y.fill_null(0),
        gov_dishonest_debtor=out.dd_now.fill_null(0),
        gov_dishonest_debtor_amount=out.dd_amount.fill_null(0),
        gov_dishonest_debtor_listings_5y=out.dd_5y.fill_null(0),
        gov_abnormal_listed=out.ab_now.fill_null(0),
        gov_abnormal_listings_5y=out.ab_5y.fill_null(0),
    )
    out = out.mutate(
        gov_negative_records_36m=out.gov_penalties_36m.fill_null(zero)
        + out.gov_blacklisted
        + out.gov_dishonest_debtor
        + out.ab_36m.fill_null(zero)
        + out.gov_commitments_broken_36m.fill_null(zero)
    )
    columns = {}
    for spec in FEATURES:
        value = out[spec.name]
        if spec.kind == "categorical":
            columns[spec.name] = value.cast("string")
        elif spec.kind == "flag":
            columns[spec.name] = value.cast("int64")
        else:
            columns[spec.name] = value.cast("float64")
    return out.select("uscc", **columns)
