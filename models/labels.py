"""Outcome labels: did an entity default in the 12 months after the as-of date?

A default is read from the records, as it would be in production — never from a truth table:

- a PBOC account of the entity reaches 91+ days past due (repayment status 4–7) or bad debt
  (B) in a month (the month is the event date);
- a registered private loan of the entity is in default: status 违约, dated
  ``delivered_on − overdue_days + private_loan_default_days + 1`` (its first day 91+ past due);
- the entity is newly listed as a dishonest judgment debtor (失信被执行人), on ``listed_on``.

Records filed under an individual business owner's resident ID are the business's (see
`features.view.context.ViewContext.by_entity`).

Sample choices, as a credit risk validator expects them and documented here:

- the population is the view's: entities registered before as-of and not deregistered;
- entities that defaulted *before* as-of are excluded (they are already bad; scoring them
  would inflate the AUC and say nothing about new lending);
- an entity deregistered during the outcome window without a default event is a good (0):
  closure is not default in these records. This can understate risk slightly; the share of
  such exits is reported by `label_summary`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from features.view.context import ViewContext, ViewPolicy, load_policy, months_before
from features.view.entity import population

#: PBOC repayment statuses that mean 91+ days past due or bad debt (DOMAIN.md §3.5)
DEFAULT_STATUSES = ("4", "5", "6", "7", "B")
HORIZON_MONTHS = 12


def months_after(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months later (clipped to the month's length)."""
    return months_before(day, -months)


def default_events(ctx: ViewContext) -> ir.Table:
    """Every default event in the records: ``(uscc, default_on, kind)``, any date."""
    accounts = ctx.table("pboc_accounts").select("account_id", "borrower_id_key")
    monthly = ctx.table("pboc_monthly")
    bad_months = monthly.filter(monthly.status.isin(list(DEFAULT_STATUSES)))
    pboc = bad_months.inner_join(accounts, "account_id")
    # a month's status is reported after the month ends: the event is known the next month
    pboc = ctx.by_entity(pboc, "borrower_id")
    pboc = pboc.select(
        "uscc", default_on=pboc.month + ibis.interval(months=1), kind=ibis.literal("pboc_91dpd")
    )

    loans = ctx.table("private_loans")
    deliveries = ctx.table("deliveries").select("delivery_id", "delivered_on")
    loans = loans.filter((loans.status == "违约") & (loans.overdue_days > 0))
    loans = loans.inner_join(deliveries, loans._delivery_id == deliveries.delivery_id)
    days = ctx.policy.private_loan_default_days + 1  # default from the 91st day past due
    loans = ctx.by_entity(loans, "borrower_id")
    loans = loans.mutate(
        default_on=(
            loans.delivered_on - loans.overdue_days.as_interval("D") + ibis.interval(days=days)
        )
    )
    private = loans.select("uscc", default_on=loans.default_on.cast("date"),
                           kind=ibis.literal("private_loan_default"))  # fmt: skip

    debtors = ctx.by_entity(ctx.table("dishonest_debtors"), "subject_id")
    court = debtors.select("uscc", default_on=debtors.listed_on,
                           kind=ibis.literal("dishonest_debtor"))  # fmt: skip
    return pboc.union(private).union(court)


def labels(
    tables: Mapping[str, ir.Table],
    as_of: dt.date,
    *,
    horizon_months: int = HORIZON_MONTHS,
    policy: ViewPolicy | None = None,
) -> ir.Table:
    """``(uscc, default_12m, default_on, deregistered_in_window)`` for the as-of population.

    ``default_12m`` is 1 when the first default event falls in ``[as_of, as_of + horizon)``.
    A PBOC status is dated the first day of the month after its month, when it is reported:
    the view as of a day sees exactly the statuses dated before it.
    """
    ctx = ViewContext(tables, as_of, policy or load_policy())
    events = default_events(ctx)
    first = events.group_by("uscc").agg(first_default=events.default_on.min())
    start = ctx.as_of_value
    end = ibis.literal(months_after(as_of, horizon_months), type="date")
    people = population(ctx).select("uscc", "deregistered_on")
    out = people.left_join(first, "uscc").drop("uscc_right")
    out = out.filter(out.first_default.isnull() | (out.first_default >= start))
    in_window = out.first_default.notnull() & (out.first_default < end)
    return out.select(
        "uscc",
        default_12m=in_window.cast("int64"),
        default_on=ibis.ifelse(in_window, out.first_default, ibis.null("date")),
        deregistered_in_window=(
            out.deregistered_on.notnull() & (out.deregistered_on < end) & ~in_window
        ).cast("int64"),
    )
