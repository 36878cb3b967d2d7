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

Each part (`parts`: accounts with their month-end rows, guarantees, inquiries) is one
per-entity aggregate with conditional aggregates; month-end rows are aggregated per account
(`account_history`, `account_delinquency`) and inquiries per subject before records are
mapped to entities.
`columns` turns the parts' columns into the features, for the view and for `build`.

Repayment-status severity (24-month string, DOMAIN.md §3.5): N, C, *, #, /, M → 0; 1–7 (days
past due in 30-day buckets) → 1–7; D (担保人代还) and Z (以资抵债) → 3; B (呆账) and G
(非正常结束) → 7. Five-category class (五级分类): 正常 1 … 损失 5, 违约 6 counts as 损失,
未分类 9 is ignored.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.view.context import ENTITY_KEY, ViewContext, merge_on_entity, months_before
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
#: query records a credit report shows: those of the last two years (PC05, DOMAIN.md §3.1)
INQUIRY_MONTHS = 24


def _spec(
    name: str, zh: str, en: str, unit: str, direction: Direction, fill: float | None
) -> FeatureSpec:
    """A numeric PBOC feature."""
    return FeatureSpec(name, "pboc", zh, en, unit, direction, fill=fill)


def _count(name: str, zh: str, en: str, direction: Direction) -> FeatureSpec:
    """A PBOC count (missing means zero)."""
    return counted(name, "pboc", zh, en, direction)


FEATURES: tuple[FeatureSpec, ...] = (
    flag("pboc_has_file", "pboc", "有征信记录",
         "has a PBOC record: credit history, or an inquiry of the last 2 years", 0),
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


def known_months(ctx: ViewContext) -> ir.Table:
    """Month-end rows for months before the as-of month (a month is known the month after).

    Each use filters and derives what it needs from these rows itself, so that an engine
    scans the (largest) table once per use instead of materialising it.
    """
    monthly = ctx.table("pboc_monthly")
    return monthly.filter(monthly.month < _date(ctx.as_of_month))


def _graded(months: ir.Table) -> ir.Table:
    """``months`` with ``severity`` and ``five`` (class) ordinals and ``delinquent``."""
    return months.mutate(
        # N (repaid as agreed), most months' symbol, is tested first: most rows stop there
        severity=months.status.cases(("N", 0), *STATUS_SEVERITY.items(), else_=0),
        five=_five_class(months.five_class),
        delinquent=months.status.isin(DELINQUENT),
    )


def known_accounts(ctx: ViewContext) -> ir.Table:
    """Accounts opened before ``as_of`` (by raw borrower ID)."""
    accounts = ctx.table("pboc_accounts")
    return accounts.filter(ctx.known(accounts.opened_on))


def account_history(ctx: ViewContext, months: ir.Table) -> ir.Table:
    """One row per account with a known month in the 24-month window, and that history.

    ``worst`` and ``worst_five`` over the window; ``latest_*``, the row of the account's
    latest month in the window (a silent account is not assumed to owe its old balance),
    taken whole (a struct, NULL fields included) at the maximum month: (account, month) is
    the table's key. Aggregating per account first keeps the month-end rows, by far the
    largest table, away from the entity mapping.
    """
    start = _date(months_before(ctx.as_of_month, HISTORY_MONTHS))
    window = _graded(months.filter(months.month >= start))
    row = ibis.struct(
        {
            "delinquent": window.delinquent,
            "overdue": window.overdue_amount,
            "balance": window.balance,
            "five": window.five,
        }
    )
    history = window.group_by("account_id").agg(
        worst=window.severity.max(),
        worst_five=window.five.max(),
        latest_month=window.month.max(),
        latest=row.argmax(window.month),
    )
    latest = history.latest
    return history.select(
        "account_id",
        "worst",
        "worst_five",
        "latest_month",
        latest_delinquent=latest["delinquent"],
        latest_overdue=latest["overdue"],
        latest_balance=latest["balance"],
        latest_five=latest["five"],
    )


@ibis.udf.agg.builtin  # type: ignore[untyped-decorator]
def bit_or(value: int) -> int:
    """Bitwise OR of the values (SQL ``bit_or``, the same on DuckDB and Spark)."""
    raise NotImplementedError("an engine's SQL function: never called in Python")


@ibis.udf.scalar.builtin  # type: ignore[untyped-decorator]
def bit_count(value: int) -> int:
    """Number of bits set (SQL ``bit_count``, the same on DuckDB and Spark)."""
    raise NotImplementedError("an engine's SQL function: never called in Python")


def account_delinquency(ctx: ViewContext, months: ir.Table) -> ir.Table:
    """Per account with a delinquent month in the history a report keeps: when, and which.

    The history kept is ``policy.negative_retention_months`` (5 years, 征信业管理条例 第十六条);
    ``last_delinquent`` is its latest delinquent month. ``late_mask`` and ``sixty_mask`` have
    one bit per month of the 24-month window (bit 0 its first month), set if the account was
    delinquent, or 60+ days past due, that month: an entity's distinct late months are then
    the bits of its accounts' masks OR-ed together, with no month-end row near the entity
    mapping. (account, month) is the table's key (duplicates are quarantined at ingest), so
    summing an account's bits ORs them.
    """
    retained = _date(months_before(ctx.as_of_month, ctx.policy.negative_retention_months))
    start = _date(months_before(ctx.as_of_month, HISTORY_MONTHS))
    late = months.filter((months.month >= retained) & months.status.isin(DELINQUENT))
    in_window = late.month >= start
    # an engine may compute the bit before the filter: months before the window get bit 0
    offset = (_month_index(late.month) - _month_index(start)).clip(lower=0)
    bit = ibis.literal(1, type="int64") << offset
    return late.group_by("account_id").agg(
        last_delinquent=late.month.max(),
        late_mask=bit.sum(where=in_window),
        sixty_mask=bit.sum(where=in_window & late.status.isin(SIXTY_PLUS)),
    )


def _account_features(ctx: ViewContext, months: ir.Table) -> ir.Table:
    """Per entity with a known account: counts, repayment history, latest balances.

    Delinquent months are counted once per entity however many accounts were late that
    month: the accounts' month masks (`account_delinquency`) are OR-ed and their bits
    counted. Balances, arrears, utilisation and the latest class count only accounts still
    open at ``as_of`` whose latest known month lies in the 24-month window.
    """
    accounts = known_accounts(ctx)
    accounts = accounts.mutate(is_open=ctx.active(accounts.opened_on, accounts.closed_on))
    for history in (account_history(ctx, months), account_delinquency(ctx, months)):
        accounts = accounts.left_join(history, "account_id").drop("account_id_right")
    a = ctx.by_entity(accounts, "borrower_id")
    latest = a.is_open & a.latest_month.notnull()
    revolving = a.account_type.isin(REVOLVING)

    def balance_where(condition: ir.BooleanValue) -> ir.FloatingScalar:
        return condition.ifelse(a.latest_balance, 0.0).sum(where=latest)

    summary = a.group_by(ENTITY_KEY).agg(
        pboc_accounts_ever=a.count(),  # account_id is the key: one row per account
        pboc_accounts_open=_ones(a.is_open).sum(),
        first_opened=a.opened_on.min(),
        pboc_accounts_opened_6m=_ones(ctx.within_months(a.opened_on, 6)).sum(),
        pboc_worst_status_24m=a.worst.max(),
        last_delinquent=a.last_delinquent.max(),
        pboc_worst_five_class_24m=a.worst_five.max(),
        pboc_delinquent_accounts_latest=_ones(a.latest_delinquent).sum(where=latest),
        pboc_overdue_amount_latest=a.latest_overdue.sum(where=latest),
        pboc_balance_total=a.latest_balance.sum(where=latest),
        pboc_balance_secured=balance_where(a.guarantee_method.isin(SECURED)),
        pboc_balance_guaranteed=balance_where(a.guarantee_method.isin(GUARANTEED)),
        pboc_balance_unsecured=balance_where(a.guarantee_method.isin(UNSECURED)),
        revolving_balance=balance_where(revolving),
        revolving_limit=revolving.ifelse(a.amount, 0.0).sum(where=latest),
        total_amount=a.amount.sum(where=latest),
        pboc_worst_five_class_latest=a.latest_five.max(where=latest),
        late_mask=bit_or(a.late_mask),
        sixty_mask=bit_or(a.sixty_mask),
    )
    as_of_index = ctx.as_of_month.year * 12 + ctx.as_of_month.month
    return summary.mutate(
        pboc_months_since_first_account=ctx.months_since(summary.first_opened),
        pboc_months_since_delinquency=as_of_index - _month_index(summary.last_delinquent),
        pboc_revolving_utilisation=summary.revolving_balance / summary.revolving_limit.nullif(0),
        pboc_balance_to_amount=summary.pboc_balance_total / summary.total_amount.nullif(0),
        pboc_delinquent_months_24m=bit_count(summary.late_mask),
        pboc_60dpd_months_24m=bit_count(summary.sixty_mask),
        _pboc_accounts=ibis.literal(1),
    ).drop(
        "first_opened",
        "last_delinquent",
        "revolving_balance",
        "revolving_limit",
        "total_amount",
        "late_mask",
        "sixty_mask",
    )


def _inquiry_features(ctx: ViewContext) -> ir.Table:
    """Per entity with an inquiry a report would show: counts by reason group and window.

    A credit report lists the query records of the last `INQUIRY_MONTHS` months; older ones
    are not read (every window is shorter, and an entity whose only records are older
    inquiries has no file a lender would see). Counted per subject first (an individual
    business's inquiries are its own and its owner's), so that only one row per subject
    meets the entity mapping.
    """
    q = ctx.table("pboc_inquiries")
    q = q.filter(ctx.within_months(q.inquired_on, INQUIRY_MONTHS))
    pre = q.reason.isin(PRE_LOAN)

    def within(months: int) -> ir.BooleanValue:
        return ctx.within_months(q.inquired_on, months)

    windows = {f"inq_preloan_{m}m": pre & within(m) for m in (1, 3, 6, 12)}
    windows["inq_postloan_12m"] = q.reason.isin(POST_LOAN) & within(12)
    windows["inq_judicial_12m"] = q.reason.isin(JUDICIAL) & within(12)
    by_subject = q.group_by("subject_id_key").agg(
        **{name: _ones(condition).sum() for name, condition in windows.items()}
    )
    s = ctx.by_entity(by_subject, "subject_id")
    counts = s.group_by(ENTITY_KEY).agg(**{name: s[name].sum() for name in windows})
    recent = q.filter(pre & within(6)).select("subject_id_key", "institution_id")
    recent = ctx.by_entity(recent, "subject_id")
    institutions = recent.group_by(ENTITY_KEY).agg(
        inq_preloan_institutions_6m=recent.institution_id.nunique()
    )
    counts = counts.left_join(institutions, ENTITY_KEY).drop(f"{ENTITY_KEY}_right")
    return counts.mutate(_pboc_inquiries=ibis.literal(1))


def _guarantee_features(ctx: ViewContext, months: ir.Table) -> ir.Table:
    """Per entity with a known guarantee: active guarantees given (对外担保), and their risk.

    Their liability, and whether any went bad: a guaranteed loan counts as 次级 or worse if
    the main borrower's own accounts (by raw subject ID, an entity or not) were so classed in
    a known month since the guarantee started, or if the delivered PD03 snapshot says so and
    that delivery arrived before ``as_of``. Co-borrowing (共同借款人) is no guarantee.
    """
    g = ctx.table("pboc_guarantees")
    g = ctx.by_entity(g.filter(ctx.known(g.started_on)), "guarantor_id")
    deliveries = ctx.table("deliveries")
    known_snapshot = deliveries.filter(ctx.known(deliveries.delivered_on)).select(
        _delivery_id=deliveries.delivery_id, snapshot_known=ibis.literal(True)
    )
    g = g.left_join(known_snapshot, "_delivery_id").drop("_delivery_id_right")
    bad = months.filter(_five_class(months.five_class) >= SUBSTANDARD)  # all a guarantor needs
    bad = bad.inner_join(known_accounts(ctx).select("account_id", "borrower_id_key"), "account_id")
    bad = bad.group_by("borrower_id_key").agg(last_bad=bad.month.max())
    g = g.left_join(bad, "borrower_id_key").drop("borrower_id_key_right")
    active = ctx.active(g.started_on, g.ended_on) & (g.liability_type != CO_BORROWER)
    substandard = (
        g.last_bad.notnull() & (_month_index(g.last_bad) >= _month_index(g.started_on))
    ) | (g.snapshot_known.notnull() & (_five_class(g.five_class) >= SUBSTANDARD))
    return g.group_by(ENTITY_KEY).agg(
        _pboc_guarantees=g.count(),  # the part's marker: non-null on each of its rows
        pboc_guarantees_active=g.count(where=active),  # guarantee_id is the key
        pboc_guarantee_amount_active=g.amount.sum(where=active),
        pboc_guarantee_substandard=_ones(substandard.fill_null(False)).max(where=active),
    )


def parts(ctx: ViewContext) -> tuple[ir.Table, ...]:
    """Per-entity aggregates of accounts, guarantees and inquiries, each with its marker.

    Each PBOC table is read with conditional aggregates; the month-end rows are first
    aggregated per account (`account_history`).
    """
    months = known_months(ctx)
    return (
        _account_features(ctx, months),
        _guarantee_features(ctx, months),
        _inquiry_features(ctx),
    )


def columns(t: ir.Table) -> dict[str, ir.Value]:
    """The `FEATURES`, typed, from a table holding the columns of every part (unfilled)."""
    credit = t._pboc_accounts.notnull() | t._pboc_guarantees.notnull()
    values = {
        "pboc_has_file": _ones(credit | t._pboc_inquiries.notnull()),
        "pboc_has_credit_history": _ones(credit),
    }
    return {
        spec.name: (values[spec.name] if spec.name in values else t[spec.name]).cast(
            "int64" if spec.kind == "flag" else "float64"
        )
        for spec in FEATURES
    }


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
    t = merge_on_entity(parts(ctx))
    values = columns(t)
    t = t.select(
        ENTITY_KEY,
        **{
            spec.name: values[spec.name]
            if spec.fill is None
            else values[spec.name].fill_null(spec.fill)
            for spec in FEATURES
        },
    )
    return ctx.with_uscc(t)
