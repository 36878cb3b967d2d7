"""PBOC credit reference (人行征信) features of the three-in-one view.

One row per market entity with any PBOC record known before ``as_of``: credit accounts
(PD01), their month-end repayment history (PD01C/D/E), repayment liabilities for others
(相关还款责任, PD03) and inquiry records (查询记录, PH01). Records filed under an individual
business owner's resident ID are the business's (`ViewContext.by_entity`).

Point in time (DOMAIN.md §3):

- an account exists once ``opened_on < as_of`` and is closed if ``closed_on < as_of``;
- a month-end row is known from the following month on (``month < as_of_month``);
- an inquiry counts if ``inquired_on < as_of``; a guarantee if ``started_on < as_of``, and
  it has ended if ``ended_on < as_of``;
- the PD03 ``balance`` and ``five_class`` are a snapshot taken when the row was delivered:
  the snapshot is used only if that delivery arrived before ``as_of``. Otherwise a
  guarantee's class comes from the main borrower's own month-end rows (when the borrower is
  in the warehouse) and its exposure is the liability amount fixed at signing.

Repayment-status severity (24-month string, DOMAIN.md §3.5): N, C, *, #, /, M → 0; 1–7 (days
past due in 30-day buckets) → 1–7; D (担保人代还) and Z (以资抵债) → 3; B (呆账) and G
(非正常结束) → 7. Five-category class (五级分类): 正常 1 … 损失 5, 违约 6 counts as 损失,
未分类 9 is ignored.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.view.context import ViewContext, months_before
from features.view.metadata import Direction, FeatureSpec, counted, flag

#: repayment-status symbol → severity ordinal; every other symbol is 0
STATUS_SEVERITY = {
    **{str(k): k for k in range(1, 8)},
    **{"D": 3, "Z": 3, "B": 7, "G": 7},
}
#: symbols of a month in arrears: overdue 1–7, bad debt, paid by guarantor or by assets
DELINQUENT = ("1", "2", "3", "4", "5", "6", "7", "B", "D", "Z")
#: 60+ days past due (status 3 or worse) or bad debt
SIXTY_PLUS = ("3", "4", "5", "6", "7", "B")
#: five-category class → ordinal (6 违约 counts as 5 损失; 9 未分类 is missing)
FIVE_CLASS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 5}
#: five-category ordinal from which a loan is non-performing (次级 or worse)
SUBSTANDARD = 3
REVOLVING = ("R1", "R2", "R3")
#: guarantee methods PD01AD07: 质押/抵押; 保证/组合含保证/农户联保; 信用/免担保
SECURED, GUARANTEED, UNSECURED = ("1", "2"), ("3", "5", "7"), ("4",)
#: inquiry reasons PH010Q03 by group (DOMAIN.md §3.4)
PRE_LOAN = ("02", "03", "08", "20", "24", "26")
POST_LOAN = ("01", "21")
JUDICIAL = ("09",)
#: liability type 共同借款人: a co-borrower owes the debt itself, it guarantees nothing
CO_BORROWER = "1"
HISTORY_MONTHS = 24


def _spec(
    name: str, zh: str, en: str, unit: str, direction: Direction, fill: float | None
) -> FeatureSpec:
    """A numeric PBOC feature."""
    return FeatureSpec(name, "pboc", zh, en, unit, direction, fill=fill)


def _count(name: str, zh: str, en: str, direction: Direction) -> FeatureSpec:
    """A PBOC count (missing means zero)."""
    return counted(name, "pboc", zh, en, direction)


FEATURES: tuple[FeatureSpec, ...] = (
    flag("pboc_has_file", "pboc", "有征信记录", "has any PBOC record, inquiries included", 0),
    flag("pboc_has_credit_history", "pboc", "有信贷记录（非白户）",
         "has a credit account or a repayment liability (not a thin file)", 0),
    _count("pboc_accounts_ever", "征信信贷账户数（曾开立）", "credit accounts ever opened", 0),
    _count("pboc_accounts_open", "未结清信贷账户数", "credit accounts open now", 0),
    _spec("pboc_months_since_first_account", "首个信贷账户开立至今月数",
          "months since the first credit account was opened", "months", -1, None),
    _count("pboc_accounts_opened_6m", "近6个月新开信贷账户数",
           "credit accounts opened in the last 6 months (credit seeking)", 1),
    _spec("pboc_worst_status_24m", "近24个月最差还款状态（严重度）",
          "worst repayment status over 24 months (severity 0-7)", "grade", 1, None),
    _spec("pboc_delinquent_months_24m", "近24个月有逾期的月数",
          "months with any delinquency over 24 months", "months", 1, 0),
    _spec("pboc_60dpd_months_24m", "近24个月逾期60天以上的月数",
          "months 60+ days past due or bad debt over 24 months", "months", 1, 0),
    _spec("pboc_months_since_delinquency", "最近一次逾期至今月数",
          "months since the last delinquent month (5-year history)", "months", -1, None),
    _count("pboc_delinquent_accounts_latest", "最近一月逾期账户数",
           "accounts delinquent in their latest known month", 1),
    _spec("pboc_overdue_amount_latest", "最近一月当前逾期总额", "current overdue amount",
          "yuan", 1, 0),
    _spec("pboc_balance_total", "未结清贷款余额", "outstanding balance of open accounts",
          "yuan", 0, 0),
    _spec("pboc_balance_secured", "抵质押贷款余额", "balance secured by pledge or mortgage",
          "yuan", 0, 0),
    _spec("pboc_balance_guaranteed", "保证类贷款余额",
          "balance backed by a guarantor (保证, 组合含保证, 农户联保)", "yuan", 0, 0),
    _spec("pboc_balance_unsecured", "信用/免担保贷款余额", "unsecured (credit) balance",
          "yuan", 0, 0),
    _spec("pboc_revolving_utilisation", "循环授信使用率",
          "balance / limit of open revolving accounts (R1, R2, R3)", "share", 1, None),
    _spec("pboc_balance_to_amount", "未结清账户余额占借款金额比例",
          "balance / amount of all open accounts", "share", 1, None),
    _spec("pboc_worst_five_class_latest", "最近一月最差五级分类",
          "worst five-category class in the latest month (1 正常 … 5 损失)", "grade", 1, None),
    _spec("pboc_worst_five_class_24m", "近24个月最差五级分类",
          "worst five-category class over 24 months", "grade", 1, None),
    _count("inq_preloan_1m", "近1个月贷前查询次数", "pre-loan inquiries, last month", 1),
    _count("inq_preloan_3m", "近3个月贷前查询次数", "pre-loan inquiries, last 3 months", 1),
    _count("inq_preloan_6m", "近6个月贷前查询次数", "pre-loan inquiries, last 6 months", 1),
    _count("inq_preloan_12m", "近12个月贷前查询次数", "pre-loan inquiries, last 12 months", 1),
    _count("inq_postloan_12m", "近12个月贷后管理查询次数",
           "post-loan inquiries (贷后/保后管理), last 12 months", 0),
    _count("inq_preloan_institutions_6m", "近6个月贷前查询机构数",
           "distinct institutions with pre-loan inquiries, last 6 months", 1),
    _count("inq_judicial_12m", "近12个月司法调查查询次数",
           "judicial-investigation inquiries, last 12 months", 1),
    _count("pboc_guarantees_active", "对外担保笔数（未解除）",
           "active repayment liabilities for others (guarantees given)", 1),
    _spec("pboc_guarantee_amount_active", "对外担保责任金额",
          "liability amount of active guarantees given", "yuan", 1, 0),
    flag("pboc_guarantee_substandard", "pboc", "对外担保的贷款为次级及以下",
         "a guaranteed loan is classed 次级 or worse", 1),
)  # fmt: skip


def _month_index(day: ir.DateValue) -> ir.IntegerValue:
    """Months since year 0 (same on every engine): consecutive months differ by one."""
    return day.year() * 12 + day.month()


def _date(day: dt.date) -> ir.DateScalar:
    return ibis.literal(day, type="date")


def _ones(condition: ir.BooleanValue) -> ir.IntegerValue:
    """1 where ``condition`` holds, else 0 (sum it to count)."""
    return condition.ifelse(1, 0)


def _five_class(code: ir.StringValue) -> ir.IntegerValue:
    """Five-category ordinal 1–5, missing for 未分类 (9)."""
    return code.cases(*FIVE_CLASS.items(), else_=ibis.null("int64"))


def known_accounts(ctx: ViewContext) -> ir.Table:
    """Accounts opened before ``as_of``, by entity, with ``is_open`` (not closed by then)."""
    accounts = ctx.by_entity(ctx.table("pboc_accounts"), "borrower_id")
    accounts = accounts.filter(ctx.known(accounts.opened_on))
    return accounts.mutate(is_open=ctx.active(accounts.opened_on, accounts.closed_on))


def known_months(ctx: ViewContext) -> ir.Table:
    """Month-end rows for months before the as-of month, with severity and class ordinals.

    Aggregations run on these rows per account first; only the (much smaller) per-account
    results are joined to the entities, which keeps the view fast at city scale.
    """
    monthly = ctx.table("pboc_monthly")
    monthly = monthly.filter(monthly.month < _date(ctx.as_of_month))
    return monthly.mutate(
        severity=monthly.status.cases(*STATUS_SEVERITY.items(), else_=0),
        five=_five_class(monthly.five_class),
        delinquent=monthly.status.isin(DELINQUENT),
    )


def _account_features(ctx: ViewContext, accounts: ir.Table) -> ir.Table:
    """Account counts, the age of the credit file and recent openings."""
    a = accounts
    summary = a.group_by("uscc").agg(
        pboc_accounts_ever=a.account_id.nunique(),
        pboc_accounts_open=_ones(a.is_open).sum(),
        first_opened=a.opened_on.min(),
        pboc_accounts_opened_6m=_ones(ctx.within_months(a.opened_on, 6)).sum(),
    )
    return summary.mutate(
        pboc_months_since_first_account=ctx.months_since(summary.first_opened)
    ).drop("first_opened")


def _repayment_features(ctx: ViewContext, accounts: ir.Table, months: ir.Table) -> ir.Table:
    """Worst status, delinquent months and five-category class over the 24-month window.

    Months since the last delinquency look back over the whole 5-year history a report
    keeps (``policy.negative_retention_months``, 征信业管理条例 第十六条). Delinquent months
    are counted once per entity however many accounts were late that month.
    """
    start = _date(months_before(ctx.as_of_month, HISTORY_MONTHS))
    retained = _date(months_before(ctx.as_of_month, ctx.policy.negative_retention_months))
    h = months.filter(months.month >= retained)
    in_window = h.month >= start
    per_account = h.group_by("account_id").agg(
        worst=in_window.ifelse(h.severity, ibis.null("int64")).max(),
        last_delinquent=h.delinquent.ifelse(h.month, ibis.null("date")).max(),
        worst_five=in_window.ifelse(h.five, ibis.null("int64")).max(),
    )
    owners = accounts.select("uscc", "account_id")
    a = per_account.inner_join(owners, "account_id")
    summary = a.group_by("uscc").agg(
        pboc_worst_status_24m=a.worst.max(),
        last_delinquent=a.last_delinquent.max(),
        pboc_worst_five_class_24m=a.worst_five.max(),
    )
    late = h.filter(in_window & h.delinquent)
    late = late.inner_join(owners, "account_id")
    counts = late.group_by("uscc").agg(
        pboc_delinquent_months_24m=late.month.nunique(),
        pboc_60dpd_months_24m=late.status.isin(SIXTY_PLUS)
        .ifelse(late.month, ibis.null("date"))
        .nunique(),
    )
    summary = summary.left_join(counts, "uscc").drop("uscc_right")
    as_of_index = ctx.as_of_month.year * 12 + ctx.as_of_month.month
    return summary.mutate(
        pboc_delinquent_months_24m=summary.pboc_delinquent_months_24m.fill_null(0),
        pboc_60dpd_months_24m=summary.pboc_60dpd_months_24m.fill_null(0),
        pboc_months_since_delinquency=as_of_index - _month_index(summary.last_delinquent),
    ).drop("last_delinquent")


def _latest_features(ctx: ViewContext, accounts: ir.Table, months: ir.Table) -> ir.Table:
    """Balances, arrears, utilisation and class in each open account's latest known month.

    Only accounts still open at ``as_of`` count, and only if their latest known month lies
    in the 24-month window (a silent account is not assumed to owe its old balance).
    """
    start = _date(months_before(ctx.as_of_month, HISTORY_MONTHS))
    recent = months.filter(months.month >= start)
    last = recent.group_by("account_id").agg(month=recent.month.max())
    latest = recent.inner_join(last, ["account_id", "month"])
    cols = ("uscc", "account_id", "account_type", "guarantee_method", "amount")
    t = latest.inner_join(accounts.filter(accounts.is_open).select(*cols), "account_id")
    revolving = t.account_type.isin(REVOLVING)

    def balance_where(condition: ir.BooleanValue) -> ir.FloatingScalar:
        return condition.ifelse(t.balance, 0.0).sum()

    summary = t.group_by("uscc").agg(
        pboc_delinquent_accounts_latest=_ones(t.delinquent).sum(),
        pboc_overdue_amount_latest=t.overdue_amount.sum(),
        pboc_balance_total=t.balance.sum(),
        pboc_balance_secured=balance_where(t.guarantee_method.isin(SECURED)),
        pboc_balance_guaranteed=balance_where(t.guarantee_method.isin(GUARANTEED)),
        pboc_balance_unsecured=balance_where(t.guarantee_method.isin(UNSECURED)),
        revolving_balance=balance_where(revolving),
        revolving_limit=revolving.ifelse(t.amount, 0.0).sum(),
        total_amount=t.amount.sum(),
        pboc_worst_five_class_latest=t.five.max(),
    )
    return summary.mutate(
        pboc_revolving_utilisation=summary.revolving_balance / summary.revolving_limit.nullif(0),
        pboc_balance_to_amount=summary.pboc_balance_total / summary.total_amount.nullif(0),
    ).drop("revolving_balance", "revolving_limit", "total_amount")


def _inquiry_features(ctx: ViewContext, inquiries: ir.Table) -> ir.Table:
    """Inquiry counts by reason group and window (hard inquiries signal credit seeking)."""
    q = inquiries
    pre = q.reason.isin(PRE_LOAN)

    def within(months: int) -> ir.BooleanValue:
        return ctx.within_months(q.inquired_on, months)

    return q.group_by("uscc").agg(
        **{f"inq_preloan_{m}m": _ones(pre & within(m)).sum() for m in (1, 3, 6, 12)},
        inq_postloan_12m=_ones(q.reason.isin(POST_LOAN) & within(12)).sum(),
        inq_preloan_institutions_6m=(pre & within(6))
        .ifelse(q.institution_id, ibis.null("string"))
        .nunique(),
        inq_judicial_12m=_ones(q.reason.isin(JUDICIAL) & within(12)).sum(),
    )


def _guarantee_features(
    ctx: ViewContext, guarantees: ir.Table, borrower_history: ir.Table
) -> ir.Table:
    """Active guarantees given (对外担保), their liability and whether any went bad.

    A guaranteed loan counts as 次级 or worse if the main borrower's own accounts were so
    classed in a known month since the guarantee started, or if the delivered PD03
    snapshot says so and that delivery arrived before ``as_of``.
    """
    g = guarantees.filter(
        ctx.active(guarantees.started_on, guarantees.ended_on)
        & (guarantees.liability_type != CO_BORROWER)
    )
    deliveries = ctx.table("deliveries")
    known_snapshot = deliveries.filter(ctx.known(deliveries.delivered_on)).select(
        _delivery_id=deliveries.delivery_id, snapshot_known=ibis.literal(True)
    )
    g = g.left_join(known_snapshot, "_delivery_id").drop("_delivery_id_right")
    bad_months = borrower_history.filter(borrower_history.five >= SUBSTANDARD)
    bad = bad_months.group_by("borrower_id").agg(last_bad=bad_months.month.max())
    g = g.left_join(bad, "borrower_id").drop("borrower_id_right")
    substandard = (
        g.last_bad.notnull() & (_month_index(g.last_bad) >= _month_index(g.started_on))
    ) | (g.snapshot_known.notnull() & (_five_class(g.five_class) >= SUBSTANDARD))
    return g.group_by("uscc").agg(
        pboc_guarantees_active=g.guarantee_id.nunique(),
        pboc_guarantee_amount_active=g.amount.sum(),
        pboc_guarantee_substandard=_ones(substandard.fill_null(False)).max(),
    )


def _borrower_history(ctx: ViewContext, months: ir.Table) -> ir.Table:
    """Known month-end rows of every borrower (by raw subject ID, entity or not)."""
    accounts = ctx.table("pboc_accounts")
    accounts = accounts.filter(ctx.known(accounts.opened_on))
    bad = months.filter(months.five >= SUBSTANDARD)  # only these matter to guarantors
    h = bad.inner_join(accounts.select("account_id", "borrower_id"), "account_id")
    return h.select("borrower_id", "month", "five")


def build(ctx: ViewContext) -> ir.Table:
    """The PBOC features, one row per entity with a PBOC record known before ``as_of``.

    Parameters
    ----------
    ctx
        Tables, as-of date and policy of the view.

    Returns
    -------
    ir.Table
        ``uscc`` then the `FEATURES` in order; numbers as float64, flags as int64 (0/1).
        Counts and amounts are 0 for an entity with a file but no such record; ratios,
        "months since" and worst-grade features stay missing without data.
    """
    accounts = known_accounts(ctx)
    months = known_months(ctx)
    inquiries = ctx.by_entity(ctx.table("pboc_inquiries"), "subject_id")
    inquiries = inquiries.filter(ctx.known(inquiries.inquired_on))
    guarantees = ctx.by_entity(ctx.table("pboc_guarantees"), "guarantor_id")
    guarantees = guarantees.filter(ctx.known(guarantees.started_on))

    one, zero = ibis.literal(1), ibis.literal(0)
    records = (
        accounts.select("uscc", credit=one)
        .union(guarantees.select("uscc", credit=one))
        .union(inquiries.select("uscc", credit=zero))
    )
    population = records.group_by("uscc").agg(
        pboc_has_file=one, pboc_has_credit_history=records.credit.max()
    )
    parts = (
        _account_features(ctx, accounts),
        _repayment_features(ctx, accounts, months),
        _latest_features(ctx, accounts, months),
        _inquiry_features(ctx, inquiries),
        _guarantee_features(ctx, guarantees, _borrower_history(ctx, months)),
    )
    view = population
    for part in parts:
        view = view.left_join(part, "uscc").drop("uscc_right")

    columns: dict[str, ir.Value] = {}
    for spec in FEATURES:
        value: ir.Value = view[spec.name]
        if spec.fill is not None:
            value = value.fill_null(spec.fill)
        columns[spec.name] = value.cast("int64" if spec.kind == "flag" else "float64")
    return view.select("uscc", **columns)
