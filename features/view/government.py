"""Government public-credit features (公共信用信息): penalties, lists, tax, arrears, commitments.

Point in time: a penalty or licence exists from its publication date, a listing from its
listing date, a tax grade from its evaluation date, an arrears month from its report date, a
commitment's outcome from its due date. Negative records only count while the law lets them be
used: penalties while publicised (the delivered ``publicity_end_on``, or the policy's period
from the decision) and summary-procedure penalties never (浙江省公共信用信息管理条例 第十一条);
every negative record for at most ``negative_retention_months`` (5 years). Records under an open
objection, or repaired, are removed first (`ViewContext.effective`).

Each table is read once and aggregated per entity with conditional aggregates (`parts`);
`columns` turns the parts' columns into the features, so that the view can join the parts
straight onto its population and `build` merges them on their own.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from features.view.context import ENTITY_KEY, ViewContext, merge_on_entity, months_before
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


#: prefix of each part's marker column: 1 for an entity with a record in the part, else NULL
MARKER = "_gov_"


def _rows(table: ir.Table, name: str) -> dict[str, ir.Value]:
    """The marker aggregate of a part: its rows per entity (NULL once joined for others)."""
    return {f"{MARKER}{name}": table.count()}


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
    return p.group_by(ENTITY_KEY).agg(
        **_rows(p, "penalties"),
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
    return lic.group_by(ENTITY_KEY).agg(
        **_rows(lic, "licences"),
        gov_licences_12m=lic.count(where=ctx.within_months(lic.decided_on, 12)),
        gov_licences_36m=lic.count(where=ctx.within_months(lic.decided_on, 36)),
    )


def _listings(
    ctx: ViewContext,
    table: str,
    key: str,
    prefix: str,
    amount: bool = False,
    recent_months: int | None = None,
) -> ir.Table:
    """Active flag and 5-year count for a list with listed/removed dates, read once.

    Only effective listings (`ViewContext.marking_hidden`) count: one under an open
    objection or repaired is not there. The optional ``{prefix}_{recent_months}m`` counts
    the effective listings of the last ``recent_months``, whatever the retention period. The
    marker marks the entities with an effective listing in the retention period: only they
    are on the list.
    """
    retention = ctx.policy.negative_retention_months
    lst = ctx.marking_hidden(table, key)
    lst = ctx.by_entity(lst, "subject_id") if ENTITY_KEY not in lst.columns else lst
    lst = lst.filter(ctx.within_months(lst.listed_on, max(retention, recent_months or 0)))
    listed = lst._hidden.isnull() & ctx.within_months(lst.listed_on, retention)
    active = ctx.active(lst.listed_on, lst.removed_on)
    metrics: dict[str, ir.Value] = {
        f"{prefix}_now": active.cast("int64").max(where=listed),
        f"{prefix}_5y": lst.count(where=listed),
    }
    if amount:
        metrics[f"{prefix}_amount"] = lst.amount.sum(where=active & listed)
    if recent_months is not None:
        recent = ctx.within_months(lst.listed_on, recent_months)
        metrics[f"{prefix}_{recent_months}m"] = lst.count(where=recent & lst._hidden.isnull())
    part = lst.group_by(ENTITY_KEY).agg(**metrics)
    # a row only for listings that are not effective (or only recent) is not on the list
    listed_entity = ibis.ifelse(part[f"{prefix}_5y"] > 0, 1, ibis.null("int64"))
    return part.mutate(**{f"{MARKER}{prefix}": listed_entity})


def _tax(ctx: ViewContext) -> ir.Table:
    tax = ctx.table("tax_credit")  # objections to tax grades go to the tax bureau itself
    tax = tax.filter(ctx.known(tax.evaluated_on))
    years = tax.select(ENTITY_KEY, "year")  # not the filtered rows again: no shared subquery
    latest_year = years.group_by(ENTITY_KEY).agg(_latest=years.year.max())
    t = tax.inner_join(latest_year, ENTITY_KEY)
    ordinal = ibis.cases(*[(t.grade == g, v) for g, v in TAX_GRADE_ORDINAL.items()])
    latest = t.year == t._latest  # (uscc, year) is the table's key: one row
    return t.group_by(ENTITY_KEY).agg(
        **_rows(t, "tax"),
        gov_tax_grade=t.grade.max(where=latest),
        tax_ordinal=ordinal.max(where=latest),
        tax_previous=ordinal.max(where=t.year == t._latest - 1),
        gov_tax_d_grades_3y=t.count(where=(t.grade == "D") & (t.year >= ctx.as_of.year - 3)),
    )


def _arrears(ctx: ViewContext) -> ir.Table:
    si = ctx.table("social_insurance_arrears")
    si = si.filter(ctx.known(si.reported_on) & (si.month < ctx.as_of_value))
    last12 = ctx.within_months(si.month, 12)
    return si.group_by(ENTITY_KEY).agg(
        **_rows(si, "arrears"),
        gov_si_arrears_months_12m=si.count(where=last12),
        gov_si_arrears_amount_12m=si.amount_owed.sum(where=last12),
        gov_months_since_si_arrears=ctx.months_since(si.month).min(),
    )


def _commitments(ctx: ViewContext) -> ir.Table:
    c = ctx.effective("credit_commitments", "commitment_id")
    c = c.filter(ctx.known(c.signed_on) & ctx.known(c.due_on) & ctx.within_months(c.due_on, 36))
    kept = c.count(where=c.fulfilled == "已履行")
    broken = c.count(where=c.fulfilled == "未履行")
    return c.group_by(ENTITY_KEY).agg(
        **_rows(c, "commitments"),
        gov_commitments_kept_36m=kept,
        gov_commitments_broken_36m=broken,
        gov_commitments_broken_share=broken.cast("float64") / (kept + broken).nullif(0),
    )


def _red_list(ctx: ViewContext) -> ir.Table:
    red = ctx.table("red_list")
    red = red.filter(ctx.within_months(red.listed_on, 60))
    return red.group_by(ENTITY_KEY).agg(
        **_rows(red, "red_list"),
        gov_red_listed=ctx.active(red.listed_on, red.expires_on).cast("int64").max(),
        gov_red_list_honours_5y=red.count(),
    )


def parts(ctx: ViewContext) -> tuple[ir.Table, ...]:
    """Per-entity aggregates, one per source table, each with its `MARKER` column."""
    return (
        _penalties(ctx),
        _licences(ctx),
        _listings(ctx, "serious_dishonesty", "list_id", "bl"),
        _listings(ctx, "dishonest_debtors", "case_no", "dd", amount=True),
        _tax(ctx),
        _arrears(ctx),
        _listings(ctx, "abnormal_operations", "record_id", "ab", recent_months=36),
        _commitments(ctx),
        _red_list(ctx),
    )


def columns(t: ir.Table) -> dict[str, ir.Value]:
    """The `FEATURES` (unfilled) from a table holding the columns of every part.

    ``gov_has_record`` is 1 for an entity with a record in any part (a marker set), else 0;
    the negative-record total is counted for those entities only.
    """
    member = ibis.or_(*(t[c].notnull() for c in t.columns if c.startswith(MARKER)))
    values: dict[str, ir.Value] = {
        "gov_has_record": ibis.ifelse(member, 1, 0),
        "gov_blacklisted": t.bl_now.fill_null(0),
        "gov_blacklist_listings_5y": t.bl_5y.fill_null(0),
        "gov_dishonest_debtor": t.dd_now.fill_null(0),
        "gov_dishonest_debtor_amount": t.dd_amount.fill_null(0),
        "gov_dishonest_debtor_listings_5y": t.dd_5y.fill_null(0),
        "gov_abnormal_listed": t.ab_now.fill_null(0),
        "gov_abnormal_listings_5y": t.ab_5y.fill_null(0),
        "gov_tax_grade_ordinal": t.tax_ordinal,
        "gov_tax_grade_change": t.tax_ordinal - t.tax_previous,
        "gov_negative_records_36m": ibis.ifelse(
            member,
            t.gov_penalties_36m.fill_null(0)
            + t.bl_now.fill_null(0)
            + t.dd_now.fill_null(0)
            + t.ab_36m.fill_null(0)
            + t.gov_commitments_broken_36m.fill_null(0),
            0,
        ),
    }
    out = {}
    for spec in FEATURES:
        value = values[spec.name] if spec.name in values else t[spec.name]
        if spec.kind == "categorical":
            out[spec.name] = value.cast("string")
        elif spec.kind == "flag":
            out[spec.name] = value.cast("int64")
        else:
            out[spec.name] = value.cast("float64")
    return out


def build(ctx: ViewContext) -> ir.Table:
    """One row per entity with any government record known before ``ctx.as_of``."""
    t = merge_on_entity(parts(ctx))
    t = t.select(ENTITY_KEY, **columns(t))
    return ctx.with_uscc(t.filter(t.gov_has_record == 1))
