"""The service's activity in one year, for the annual report (年度运行分析报告): aggregates only.

`service_activity` counts, from the service database, the logged queries of the year by
purpose, route and status, the 信易贷 pre-approvals by decision (read from the query log's
outcome, ``decision=approve limit=300000``), and the objections and repairs raised and
settled through the service with how many were settled on time. A year is a calendar year
in China time (`api.services.workdays.CHINA`). No identifier leaves this module.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.db.tables import Objection, QueryLog, Repair
from api.services.consent import PURPOSES
from api.services.records import ObjectionStatus, RepairStatus
from api.services.workdays import CHINA, working_days_between
from scoring.reports.annual_sections import REPAIR_REVIEW_WORKING_DAYS, ServiceActivity

#: the pre-approval route, as the query log records it (the route template)
PREAPPROVAL_ROUTE = "/v1/preapprovals"
_DECISION = re.compile(r"\bdecision=(approve|refer|decline)\b")


def _year_instants(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of ``year`` and of the next one in China, in UTC."""
    start = dt.datetime(year, 1, 1, tzinfo=CHINA).astimezone(dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=CHINA).astimezone(dt.UTC)
    return start, end


def service_activity(session: Session, year: int) -> ServiceActivity:
    """What the service did in ``year``: queries, objections, repairs, pre-approvals.

    Parameters
    ----------
    session
        A session on the service database.
    year
        The calendar year (China time for query instants; objection and repair dates are
        already China dates).

    Returns
    -------
    scoring.reports.annual.ServiceActivity
    """
    start, end = _year_instants(year)
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    in_year = (QueryLog.at >= start) & (QueryLog.at < end)

    def counts(column: object) -> dict[object, int]:
        rows = session.execute(
            select(column, func.count()).where(in_year).group_by(column)  # type: ignore[call-overload]
        ).all()
        return {key: int(n) for key, n in rows}

    by_purpose = {str(k or ""): n for k, n in counts(QueryLog.purpose).items()}
    by_route = {str(k): n for k, n in counts(QueryLog.route).items()}
    by_status = {int(str(k)): n for k, n in counts(QueryLog.status).items()}
    preapprovals: dict[str, int] = {}
    outcomes = session.execute(
        select(QueryLog.outcome, func.count())
        .where(in_year, QueryLog.route == PREAPPROVAL_ROUTE, QueryLog.status < 400)
        .group_by(QueryLog.outcome)
    ).all()
    for outcome, n in outcomes:
        match = _DECISION.search(outcome or "")
        if match:
            preapprovals[match.group(1)] = preapprovals.get(match.group(1), 0) + int(n)

    raised = session.scalar(
        select(func.count()).select_from(Objection).where(Objection.raised_on.between(first, last))
    )
    resolved = session.execute(
        select(Objection.resolved_on, Objection.due_on).where(
            Objection.status == ObjectionStatus.RESOLVED,
            Objection.resolved_on.between(first, last),
        )
    ).all()
    overdue = session.scalar(
        select(func.count())
        .select_from(Objection)
        .where(
            Objection.raised_on <= last,
            Objection.due_on < last,
            (Objection.resolved_on.is_(None)) | (Objection.resolved_on > last),
        )
    )
    applied = session.execute(
        select(Repair.status, func.count())
        .where(Repair.applied_on.between(first, last))
        .group_by(Repair.status)
    ).all()
    decided = session.execute(
        select(Repair.applied_on, Repair.decided_on).where(
            Repair.status.in_([RepairStatus.APPROVED, RepairStatus.REJECTED]),
            Repair.decided_on.between(first, last),
        )
    ).all()
    return ServiceActivity(
        year=year,
        queries_by_purpose=by_purpose,
        queries_by_route=by_route,
        queries_by_status=by_status,
        purpose_names={str(p.value): name for p, (_, name) in PURPOSES.items()},
        objections_raised=int(raised or 0),
        objections_resolved=len(resolved),
        objections_resolved_on_time=sum(
            1 for done, due in resolved if done is not None and done <= due
        ),
        objections_open_overdue=int(overdue or 0),
        repairs_applied=sum(int(n) for _, n in applied),
        repairs_decided=len(decided),
        repairs_decided_on_time=sum(
            1
            for applied_on, decided_on in decided
            if decided_on is not None
            and working_days_between(applied_on, decided_on) <= REPAIR_REVIEW_WORKING_DAYS
        ),
        repairs_by_status={str(s): int(n) for s, n in applied},
        preapprovals_by_decision=preapprovals,
    )


__all__ = ["PREAPPROVAL_ROUTE", "service_activity"]
