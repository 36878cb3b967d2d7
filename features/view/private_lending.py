"""Private lending (民间借贷) in the three-in-one view: registered loans and how they perform.

The 温州民间借贷登记服务中心 registers private loans: mandatory for a single loan of ¥3 m or
more, a balance of ¥10 m or more, or 30 or more lenders, within 15 days of the contract
(温州市民间融资管理条例 第十四条); smaller loans may be filed voluntarily. The same regulation
(第十八条) says a filed loan must never be a negative factor for the borrower's grade by itself,
and that on-time performance is positive credit evidence (DOMAIN.md §4.2). Hence the
features that describe registered loans *as such* (having one, how many, how much, how many
in good standing or settled on time) carry direction ``-1``; only performance (overdue,
default) and price (a rate far above the 温州指数 or the legal cap, a distress signal) carry
``+1``.

An entity with no registered loan takes, on every feature of this source, the value of a
registered loan that says nothing either way: no loans, no amount, 0 months since the
first registration (the least favourable value of a ``-1`` feature: a loan just filed), no
share overdue, no spread over the 温州指数, none above the legal cap, none filed late. So a
borrower whose registered loans are in good standing, fairly priced and filed on time has
on each feature a value at least as favourable as an entity without one, and the monotone
constraints can never make the filing count against it (the scoring keeps a guard for what
the direction-0 features and interactions could still do: `scoring.batch`). Only the months
since the last overdue episode stay missing for both, meaning "never overdue".

Point in time
-------------
A delivered row carries the loan's *current* status (``status``, ``overdue_days``,
``settled_on``) as of its delivery, not as of ``as_of``; a loan is delivered once (the
warehouse refuses a later row with the same ``loan_id``). The state at ``as_of`` is rebuilt
from dates only, never from the status label of a later day:

- a loan is known from its registration (``registered_on < as_of``), not from its contract;
- it is settled by ``as_of`` if ``settled_on < as_of``;
- a loan delivered as 逾期 or 违约 with ``overdue_days > 0`` has been overdue since
  ``delivered_on − overdue_days`` (``delivered_on`` from the ``deliveries`` ledger). At
  ``as_of`` it is overdue if that start is before ``as_of`` and it was not settled before,
  with ``as_of − start`` days past due (DPD); it is in default from
  ``private_loan_default_days`` + 1 DPD on (91+, as for PBOC accounts);
- it is in good standing at ``as_of`` if known and not overdue at ``as_of``;
- an overdue episode counts as negative information while it is open and for
  ``negative_retention_months`` (5 years) after it ended (征信业管理条例 第十六条);
- the 温州指数 of a month is known from the next month on (``month < as_of_month``); the LPR
  used for the legal cap is the latest one published on or before the contract date.

What cannot be rebuilt: a loan that was overdue at ``as_of`` but settled before its delivery
arrives as 结清 with ``overdue_days = 0``, so its delinquency is invisible (the features
under-state past delinquency; they never leak later information). Days are counted in
integers (``as_of − start = (as_of − delivered_on) + overdue_days``), so the same
expressions run on DuckDB and Spark.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from features.view.context import ENTITY_KEY, ViewContext, months_before
from features.view.metadata import Direction, FeatureSpec, Source, counted, flag

SOURCE: Source = "private_lending"
#: delivered statuses whose ``overdue_days`` date the start of an overdue episode
OVERDUE_STATUSES = ("逾期", "违约")
#: days in a month for "months since" features, as in `ViewContext.months_since`
DAYS_PER_MONTH = 30.4375


def _numeric(
    name: str, zh: str, en: str, unit: str, direction: Direction, fill: float | None
) -> FeatureSpec:
    return FeatureSpec(name, SOURCE, zh, en, unit, direction, fill=fill)


FEATURES: tuple[FeatureSpec, ...] = (
    flag("pl_has_registered_loan", SOURCE, "有民间借贷备案记录", "Has a registered private loan (positive evidence, 温州市民间融资管理条例 第十八条)", -1),
    counted("pl_loans", SOURCE, "已备案民间借贷笔数", "Registered private loans", -1),
    _numeric("pl_amount", "已备案民间借贷总金额（元）", "Total amount of registered private loans (yuan)", "yuan", -1, 0),
    _numeric("pl_months_since_first_registration", "距首笔备案月数", "Months since the first registration", "months", -1, 0),
    counted("pl_loans_good_standing", SOURCE, "当前履约正常的备案借贷笔数", "Registered loans in good standing now", -1),
    counted("pl_loans_settled_on_time", SOURCE, "按期结清（结清前未逾期）的备案借贷笔数", "Registered loans settled without ever being overdue", -1),
    _numeric("pl_share_ever_overdue", "曾逾期借贷占比（5年内）", "Share of registered loans overdue in the last 5 years", "share", 1, 0),
    counted("pl_loans_overdue", SOURCE, "当前逾期的备案借贷笔数", "Registered loans overdue now", 1),
    _numeric("pl_max_days_past_due", "当前最长逾期天数", "Longest days past due now", "days", 1, 0),
    counted("pl_loans_defaulted_5y", SOURCE, "当前或近5年违约（逾期90天以上）笔数", "Loans in default (91+ days past due) now or in the last 5 years", 1),
    _numeric("pl_months_since_last_overdue", "距最近一次逾期开始月数", "Months since the last overdue episode started", "months", -1, None),
    _numeric("pl_rate_spread_max", "利率高出温州指数的最大幅度", "Largest excess of the rate over the 温州指数 of the contract month (0 if at or below)", "percent points", 1, 0),
    _numeric("pl_rate_spread_mean", "利率高出温州指数的平均幅度", "Mean excess of the rate over the 温州指数 of the contract month (0 if at or below)", "percent points", 1, 0),
    _numeric("pl_share_above_legal_cap", "利率超过司法保护上限的借贷占比", "Share of loans priced above the legal interest cap at contract", "share", 1, 0),
    counted("pl_max_lender_count", SOURCE, "单笔借贷最多出借人数", "Most lenders on one loan", 0),
    _numeric("pl_share_registered_late", "超过15日备案的借贷占比", "Share of loans registered later than 15 days after the contract", "share", 0, 0),
)  # fmt: skip


def _days(ctx: ViewContext, day: ir.DateValue) -> ir.IntegerValue:
    """Whole days from ``day`` to ``as_of``, or NULL when ``day`` is not before ``as_of``."""
    return ibis.ifelse(ctx.known(day), ctx.days_before(day), ibis.null("int64"))


def _count(condition: ir.BooleanValue) -> ir.FloatingScalar:
    """How many rows meet ``condition`` (NULL counts as false), as float64.

    Counted as integers and cast once: a bare ``1.0`` is a DECIMAL literal to DuckDB and
    Spark, whose sum would leave the view as DECIMAL(38, 1) while Ibis takes it for float64.
    """
    return ibis.ifelse(condition, 1, 0).sum().cast("float64")


def _share(condition: ir.BooleanValue) -> ir.FloatingScalar:
    """Share of rows with a non-NULL ``condition`` that meet it (NULL when there are none)."""
    return condition.cast("float64").mean()


def _priced(ctx: ViewContext, loans: ir.Table) -> ir.Table:
    """``loan_id``, excess over the 温州指数 and ``above_cap`` for every known loan.

    The excess is ``max(0, annual_rate − composite_rate)`` of the contract month, NULL when
    that month's index is not known at ``as_of``. Clipping at zero keeps a loan priced at or
    below the market from ever raising a risk feature (§4.2). The cap is 24 % for contracts
    before 2020-08-20, else ``lpr_multiple`` × the one-year LPR at contract (法释〔2015〕18号
    第二十六条; 2020 revision 第二十五条); ``above_cap`` is NULL for exempt lenders and when
    no LPR was published yet.
    """
    index = ctx.table("wenzhou_index")
    index = index.filter(index.month < ibis.literal(ctx.as_of_month, type="date")).select(
        "month", "composite_rate"
    )
    lpr = ctx.table("lpr")
    cap = ctx.policy.interest_cap
    # as-of join: the latest LPR published on or before the contract date (one row per loan)
    latest = (
        loans.select("loan_id", "contract_on")
        .inner_join(lpr, lpr.published_on <= loans.contract_on)
        .group_by("loan_id")
        .agg(published_on=lpr.published_on.max())
    )
    latest = latest.inner_join(lpr, "published_on").select("loan_id", lpr_rate=lpr.one_year_rate)
    contract_month = loans.contract_on.truncate("M")
    priced = loans.left_join(index, contract_month == index.month).left_join(latest, "loan_id")
    legal_cap = ibis.ifelse(
        priced.contract_on < ibis.literal(cap.lpr_rule_from, type="date"),
        ibis.literal(cap.before_2020_08_20_percent, type="float64"),
        priced.lpr_rate * cap.lpr_multiple,
    )
    spread = priced.annual_rate - priced.composite_rate
    return priced.select(
        "loan_id",
        rate_excess=ibis.cases(
            (spread.isnull(), ibis.null("float64")), (spread > 0, spread), else_=0.0
        ),
        above_cap=ibis.ifelse(
            priced.lender_type.isin(list(cap.exempt_lender_types)),
            ibis.null("boolean"),
            priced.annual_rate > legal_cap,
        ),
    )


def loan_states(ctx: ViewContext) -> ir.Table:
    """One row per loan known at ``as_of`` with its state then (see the module docstring).

    Columns: the delivered contract fields, ``overdue_days_ago`` (days from the start of the
    overdue episode to ``as_of``, NULL if the loan never was overdue before ``as_of`` or
    settled first), ``overdue_now``, ``dpd_now``, ``defaulted_5y``, ``retained_overdue``
    (an episode within the retention period), ``settled_on_time``, ``registered_late``,
    ``rate_excess`` and ``above_cap``. A loan whose delivery is missing from the ledger
    cannot date its overdue episode and is taken as never overdue.
    """
    policy = ctx.policy
    default_days = policy.private_loan_default_days
    retention_days = (ctx.as_of - months_before(ctx.as_of, policy.negative_retention_months)).days
    raw = ctx.effective("private_loans", "loan_id")  # not under objection, not repaired
    deliveries = ctx.table("deliveries").select("delivery_id", "delivered_on")
    loans = raw.filter(ctx.known(raw.registered_on)).left_join(
        deliveries, raw._delivery_id == deliveries.delivery_id
    )
    settled_ago = _days(ctx, loans.settled_on)  # NULL: not settled before as_of
    start_ago = ibis.ifelse(
        loans.status.isin(OVERDUE_STATUSES) & (loans.overdue_days > 0),
        ctx.days_before(loans.delivered_on) + loans.overdue_days,
        ibis.null("int64"),
    )
    # an episode that started before as_of and before any settlement known at as_of
    started = (start_ago > 0) & (settled_ago.isnull() | (start_ago > settled_ago))
    states = loans.mutate(
        overdue_days_ago=ibis.ifelse(started, start_ago, ibis.null("int64")),
        settled_ago=settled_ago,
    )
    ago, settled = states.overdue_days_ago, states.settled_ago
    overdue_now = ago.notnull() & settled.isnull()
    states = states.mutate(
        overdue_now=overdue_now,
        dpd_now=ibis.ifelse(overdue_now, ago, 0),
        retained_overdue=ago.notnull() & (settled.isnull() | (settled < retention_days)),
        defaulted_5y=(ago > default_days)
        & (settled.isnull() | (((ago - settled) > default_days) & (settled < retention_days))),
        settled_on_time=settled.notnull() & ago.isnull(),
        registered_late=(
            states.registered_on.delta(states.contract_on, unit="day")
            > policy.private_loan_filing_days
        ),
    )
    return states.inner_join(_priced(ctx, states), "loan_id")


def parts(ctx: ViewContext) -> tuple[ir.Table, ...]:
    """The per-entity aggregate of the loans known at ``as_of`` (one part).

    Borrowers (a USCC or a 个体工商户 owner's resident ID) are mapped to entities with
    `ViewContext.by_entity`.
    """
    loans = ctx.by_entity(loan_states(ctx), "borrower_id")
    last_overdue_ago = ibis.ifelse(
        loans.retained_overdue, loans.overdue_days_ago, ibis.null("int64")
    ).min()
    values: dict[str, Any] = {
        "pl_loans": loans.loan_id.count().cast("float64"),
        "pl_amount": loans.amount.sum(),
        "pl_months_since_first_registration": ctx.months_since(loans.registered_on.min()),
        "pl_loans_good_standing": _count(~loans.overdue_now),
        "pl_loans_settled_on_time": _count(loans.settled_on_time),
        "pl_share_ever_overdue": _share(loans.retained_overdue),
        "pl_loans_overdue": _count(loans.overdue_now),
        "pl_max_days_past_due": loans.dpd_now.max().cast("float64"),
        "pl_loans_defaulted_5y": _count(loans.defaulted_5y),
        "pl_months_since_last_overdue": last_overdue_ago.cast("float64") / DAYS_PER_MONTH,
        "pl_rate_spread_max": loans.rate_excess.max(),
        "pl_rate_spread_mean": loans.rate_excess.mean(),
        "pl_share_above_legal_cap": _share(loans.above_cap),
        "pl_max_lender_count": loans.lender_count.max().cast("float64"),
        "pl_share_registered_late": _share(loans.registered_late),
    }
    values["_pl_loans"] = loans.count()  # the part's marker: non-null on each of its rows
    return (loans.group_by(ENTITY_KEY).agg(**values),)


def columns(t: ir.Table) -> dict[str, ir.Value]:
    """The `FEATURES` (unfilled; flags 0/1) from a table holding the part's columns."""
    values = {"pl_has_registered_loan": t["_pl_loans"].notnull().ifelse(1, 0)}
    return {
        f.name: (values[f.name] if f.name in values else t[f.name]).cast(
            "int64" if f.kind == "flag" else "float64"
        )
        for f in FEATURES
    }


def build(ctx: ViewContext) -> ir.Table:
    """The private-lending features: one row per entity with a loan registered before as_of.

    Parameters
    ----------
    ctx
        Tables, ``as_of`` and policy.

    Returns
    -------
    ibis.Table
        ``uscc`` then the `FEATURES` in order; numeric features float64, flags int64.
        Entities with no known registered loan have no row (the view fills them with each
        feature's ``fill``). A value that cannot be evaluated for an entity's loans (a price
        whose 温州指数 is not known yet, a lender exempt from the cap) takes the same
        ``fill``: no loan shows an excess, so such a loan never looks worse than none.
    """
    (t,) = parts(ctx)
    values = columns(t)
    t = t.select(
        ENTITY_KEY,
        **{
            f.name: values[f.name] if f.fill is None else values[f.name].fill_null(f.fill)
            for f in FEATURES
        },
    )
    return ctx.with_uscc(t)
