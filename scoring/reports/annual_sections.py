"""The sections of the annual report (年度运行分析报告): one builder per section.

Each builder takes plain inputs (warehouse tables, the snapshot, the service's activity) and
returns the section's figures as JSON-ready values; `scoring.reports.annual` puts them
together and renders them. See that module for where each section's numbers come from.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from features.area_codes import load_area_codes
from features.catalog import Catalog
from features.quality import working_day_index
from features.view.engine import packaged_catalog
from scoring.policy import ScoringPolicy

logger = logging.getLogger(__name__)

#: the date that places a record of each catalog item in a year (items not named: no date)
EVENT_DATES: Mapping[str, str] = {
    "entities": "registered_on", "admin_licenses": "decided_on", "admin_penalties": "decided_on",
    "serious_dishonesty": "listed_on", "red_list": "listed_on", "dishonest_debtors": "listed_on",
    "tax_credit": "evaluated_on", "social_insurance_arrears": "reported_on",
    "abnormal_operations": "listed_on", "credit_commitments": "signed_on",
    "credit_objections": "raised_on", "credit_repairs": "applied_on",
    "pboc_accounts": "opened_on", "pboc_monthly": "month", "pboc_guarantees": "started_on",
    "pboc_inquiries": "inquired_on", "private_loans": "registered_on",
    "wenzhou_index": "month", "lpr": "published_on",
}  # fmt: skip
#: lists of section 5: (table, subject column, end column, Chinese name, view flag)
LISTS = (
    ("red_list", "uscc", "expires_on", "守信激励对象名单（红名单）", "gov_red_listed"),
    ("serious_dishonesty", "subject_id", "removed_on", "严重失信主体名单（黑名单）",
     "gov_blacklisted"),
    ("dishonest_debtors", "subject_id", "removed_on", "失信被执行人", "gov_dishonest_debtor"),
    ("abnormal_operations", "uscc", "removed_on", "经营异常名录", "gov_abnormal_listed"),
)  # fmt: skip
#: reference review time of a repair application, working days (信用中国, DOMAIN.md §7;
#: secondary source, so reported as a reference, not a legal deadline)
REPAIR_REVIEW_WORKING_DAYS = 10
#: source combinations of section 3, in display order: (gov, pboc, private lending)
_SOURCES = ("gov_has_record", "pboc_has_file", "pl_has_registered_loan")
VIEW_COLUMNS = ("uscc", "district", "industry", *_SOURCES, "pboc_has_credit_history",
                 *(flag for *_, flag in LISTS))  # fmt: skip
_DUPLICATE_RULES = ("duplicate", "duplicate_existing")
#: Chinese names of the 信易贷 decisions
DECISION_NAMES: Mapping[str, str] = {"approve": "通过", "refer": "转人工", "decline": "拒绝"}


@dataclass(frozen=True)
class ServiceActivity:
    """What the service did in a year (aggregates of its database, no identifiers).

    Attributes
    ----------
    year
        The calendar year (China time).
    queries_by_purpose, queries_by_route, queries_by_status
        Logged data queries by stated purpose (``""`` when none), route template and HTTP
        status.
    purpose_names
        Chinese name of each purpose code (e.g. ``loan_approval`` → 贷款审批).
    objections_raised, objections_resolved, objections_resolved_on_time
        Objections raised in the year; resolved in the year; of those, resolved by their
        due date (5 working days, or the extended term).
    objections_open_overdue
        Objections still open at the year end and past their due date.
    repairs_applied, repairs_decided, repairs_decided_on_time
        Repair applications in the year; decided in the year (any decision); of those,
        decided within `REPAIR_REVIEW_WORKING_DAYS` working days.
    repairs_by_status
        Applications of the year by their current status.
    preapprovals_by_decision
        Successful 信易贷 pre-approvals of the year by decision (approve / refer / decline).
    """

    year: int
    queries_by_purpose: dict[str, int] = field(default_factory=dict)
    queries_by_route: dict[str, int] = field(default_factory=dict)
    queries_by_status: dict[int, int] = field(default_factory=dict)
    purpose_names: dict[str, str] = field(default_factory=dict)
    objections_raised: int = 0
    objections_resolved: int = 0
    objections_resolved_on_time: int = 0
    objections_open_overdue: int = 0
    repairs_applied: int = 0
    repairs_decided: int = 0
    repairs_decided_on_time: int = 0
    repairs_by_status: dict[str, int] = field(default_factory=dict)
    preapprovals_by_decision: dict[str, int] = field(default_factory=dict)

    @property
    def queries(self) -> int:
        """All logged queries of the year."""
        return sum(self.queries_by_route.values())


# --------------------------------------------------------------------------------------------
# helpers


def as_frame(table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    return table.to_pandas() if isinstance(table, pa.Table) else table


def _year_bounds(year: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def _in_year(column: ir.Value, year: int) -> ir.BooleanValue:
    start, end = _year_bounds(year)
    value = column.cast("date")
    result: ir.BooleanValue = (value >= start) & (value <= end)
    return result


def share_of(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _table(tables: Mapping[str, ir.Table], name: str) -> ir.Table:
    """A warehouse table: from ``tables``, else from the backend the tables come from."""
    if name in tables:
        return tables[name]
    backend: Any = ibis.get_backend(tables["deliveries"])
    table: ir.Table = backend.table(name)
    return table


def working_days(start: pd.Series, end: pd.Series) -> npt.NDArray[np.int64]:
    """Working days after each ``start`` up to its ``end`` (0 when ``end <= start``).

    The vectorised `features.quality.working_days_between`: one `working_day_index` calendar
    for the whole span.

    Examples
    --------
    >>> working_days(pd.Series([dt.date(2019, 9, 30)]), pd.Series([dt.date(2019, 10, 8)]))
    array([1])
    """
    if start.empty:
        return np.zeros(0, dtype=np.int64)
    first = min(start.min(), end.min())
    last = max(start.max(), end.max())
    index = working_day_index(pd.Timestamp(first).date(), pd.Timestamp(last).date())
    offset = np.datetime64(first, "D")
    at_start = index[(pd.to_datetime(start).to_numpy("datetime64[D]") - offset).astype(np.int64)]
    at_end = index[(pd.to_datetime(end).to_numpy("datetime64[D]") - offset).astype(np.int64)]
    result: npt.NDArray[np.int64] = np.clip(at_end - at_start, 0, None).astype(np.int64)
    return result


# --------------------------------------------------------------------------------------------
# section 2: data collection


def collection_section(
    tables: Mapping[str, ir.Table], year: int, catalog: Catalog | None = None
) -> dict[str, Any]:
    """数据归集 of ``year``: deliveries by department, records of the year, 双公示 timeliness."""
    catalog = catalog or packaged_catalog()
    deliveries = _table(tables, "deliveries")
    of_year = deliveries.filter(_in_year(deliveries.delivered_on, year)).select("delivery_id")
    per_table = _table(tables, "delivery_tables").semi_join(of_year, "delivery_id")
    ledger = (
        per_table.group_by("department")
        .agg(
            deliveries=per_table.delivery_id.nunique(),
            rows_in=per_table.rows_in.sum(),
            accepted=per_table.accepted.sum(),
            quarantined=per_table.quarantined.sum(),
        )
        .to_pandas()
    )
    quarantine = _table(tables, "quarantine").semi_join(of_year, "delivery_id")
    departments = per_table.select("delivery_id", "table_name", "department")
    rules = quarantine.inner_join(departments, ["delivery_id", "table_name"])
    rules = rules.group_by(["department", "rule"]).agg(n=rules.count()).to_pandas()
    by_department = []
    for row in ledger.sort_values("rows_in", ascending=False).itertuples():
        mine = rules[rules.department == row.department]
        rows_in = int(row.rows_in)
        by_department.append({
            "department": str(row.department), "deliveries": int(row.deliveries),
            "rows_in": rows_in, "accepted": int(row.accepted),
            "quarantined": int(row.quarantined),
            "validity": share_of(rows_in - int(row.quarantined), rows_in),
            "duplicates": int(mine[mine.rule.isin(_DUPLICATE_RULES)].n.sum()),
            "orphans": int(mine[mine.rule == "orphan"].n.sum()),
        })  # fmt: skip
    records = []
    for item in catalog.items:
        column = EVENT_DATES.get(item.table)
        if column is None:
            continue
        t = tables[item.table]
        rows = t.filter(_in_year(t[column], year))
        counts = rows.aggregate(
            n=rows.count(), **{f"c{i}": rows[c].count() for i, c in enumerate(item.column_names)}
        )
        values = counts.to_pandas().iloc[0]
        n = int(values["n"])
        cells = [int(values[f"c{i}"]) for i in range(len(item.column_names))]
        records.append({
            "table": item.table, "name": item.name, "department": item.source,
            "date_column": column, "records": n,
            "completeness": sum(cells) / (n * len(cells)) if n else None,
        })  # fmt: skip
    limit = int(catalog.publication_rule.get("working_days", 7))
    timeliness = []
    for item in catalog.items:
        rule = item.publication_rule
        if rule is None:
            continue
        t = tables[item.table]
        dates = (t.filter(_in_year(t[rule.decision], year))
                 .select(t[rule.decision].name("d"), t[rule.publication].name("p"))
                 .to_pandas())  # fmt: skip
        late = int((working_days(dates.d, dates.p) > limit).sum())
        timeliness.append({
            "table": item.table, "name": item.name, "department": item.source,
            "decisions": len(dates), "on_time": len(dates) - late,
            "share": share_of(len(dates) - late, len(dates)),
        })  # fmt: skip
    return {
        "working_day_limit": limit,
        "by_department": by_department,
        "deliveries": int(of_year.count().to_pandas()),
        "records": records,
        "timeliness": timeliness,
    }


# --------------------------------------------------------------------------------------------
# sections 3 and 4: coverage, grades and classes


def coverage_section(scored: pd.DataFrame) -> dict[str, Any]:
    """主体覆盖 of the scored entities, from the view's source flags."""
    flags = scored[list(_SOURCES)].fillna(0).astype(bool)
    n = len(scored)
    combos = flags.value_counts().to_dict()
    rows = []
    for gov, pboc, private in [(a, b, c) for a in (True, False) for b in (True, False)
                               for c in (True, False)]:  # fmt: skip
        count = int(combos.get((gov, pboc, private), 0))
        rows.append({"gov": gov, "pboc": pboc, "private_lending": private,
                     "entities": count, "share": share_of(count, n)})  # fmt: skip
    thin = scored["pboc_has_credit_history"].fillna(0).astype(bool) == False  # noqa: E712
    return {
        "entities": n,
        "by_source": {name: int(flags[name].sum()) for name in _SOURCES},
        "combinations": rows,
        "all_three": int(flags.all(axis=1).sum()),
        "none": int((~flags.any(axis=1)).sum()),
        "thin_file": int(thin.sum()),
        "thin_file_with_gov": int((thin & flags["gov_has_record"]).sum()),
        "thin_file_with_private_lending": int((thin & flags["pl_has_registered_loan"]).sum()),
    }


def _crosstab(scored: pd.DataFrame, by: str, column: str, order: Sequence[str],
              names: Mapping[str, str]) -> list[dict[str, Any]]:  # fmt: skip
    table = pd.crosstab(scored[by].astype(str), scored[column].astype(str))
    table = table.reindex(columns=order, fill_value=0)
    table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    return [
        {"code": str(code), "name": names.get(str(code), str(code)),
         "counts": {g: int(row[g]) for g in order}, "total": int(row.sum())}
        for code, row in table.iterrows()
    ]  # fmt: skip


def grades_section(
    scored: pd.DataFrame, policy: ScoringPolicy, catalog: Catalog | None = None
) -> dict[str, Any]:
    """信用等级与分类监管: grades and supervision classes by district and by industry."""
    catalog = catalog or packaged_catalog()
    area = load_area_codes()
    districts: dict[str, str] = {}
    for code in scored["district"].dropna().astype(str).unique():
        try:
            districts[code] = area.name(code)
        except LookupError:
            districts[code] = code
    industries = dict(catalog.item("entities").columns["industry"].codes or {})
    grades, classes = list(policy.grade_names), [c.name for c in policy.classes]
    return {
        "grade_names": grades,
        "class_names": classes,
        "grades": {g: int((scored.grade.astype(str) == g).sum()) for g in grades},
        "classes": {c: int((scored.supervision_class.astype(str) == c).sum()) for c in classes},
        "grade_by_district": _crosstab(scored, "district", "grade", grades, districts),
        "class_by_district": _crosstab(scored, "district", "supervision_class", classes,
                                       districts),
        "grade_by_industry": _crosstab(scored, "industry", "grade", grades, industries),
        "class_by_industry": _crosstab(scored, "industry", "supervision_class", classes,
                                       industries),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# sections 5 and 6: lists, objections and repairs


def lists_section(
    tables: Mapping[str, ir.Table], year: int, scored: pd.DataFrame
) -> list[dict[str, Any]]:
    """红黑名单: records in force at the year end, new and ended in the year."""
    start, end = _year_bounds(year)
    out = []
    for name, subject, until, zh, flag in LISTS:
        t = tables[name]
        in_force = (t.listed_on <= end) & (t[until].isnull() | (t[until] > end))
        values = t.aggregate(
            in_force=in_force.sum(),
            subjects_in_force=t[subject].nunique(where=in_force),
            new=_in_year(t.listed_on, year).sum(),
            ended=(t[until].notnull() & (t[until] >= start) & (t[until] <= end)).sum(),
        ).to_pandas().iloc[0]  # fmt: skip
        out.append({
            "table": name, "name": zh,
            **{k: int(values[k]) for k in ("in_force", "subjects_in_force", "new", "ended")},
            "scored_entities_flagged": int(scored[flag].fillna(0).astype(bool).sum()),
        })  # fmt: skip
    return out


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    return frame.assign(**{c: pd.to_datetime(frame[c]) for c in columns})


def remedies_section(
    tables: Mapping[str, ir.Table],
    year: int,
    policy: ScoringPolicy,
    activity: ServiceActivity | None,
) -> dict[str, Any]:
    """异议与信用修复 of the credit office's records (and the service's, when given)."""
    start, end = (pd.Timestamp(day) for day in _year_bounds(year))
    remedies = policy.remedies
    objections = tables["credit_objections"].select("raised_on", "resolved_on", "outcome")
    o = _dates(objections.to_pandas(), "raised_on", "resolved_on")
    raised = o.raised_on.notna() & o.raised_on.between(start, end)
    resolved = o[o.resolved_on.notna() & o.resolved_on.between(start, end)]
    days = working_days(resolved.raised_on, resolved.resolved_on)
    open_at_end = (o.raised_on <= end) & (o.resolved_on.isna() | (o.resolved_on > end))
    repairs = _dates(
        tables["credit_repairs"].select("applied_on", "decided_on", "decision").to_pandas(),
        "applied_on",
        "decided_on",
    )
    decided = repairs[repairs.decided_on.notna() & repairs.decided_on.between(start, end)]
    repair_days = working_days(decided.applied_on, decided.decided_on)
    pending = (repairs.applied_on <= end) & (repairs.decided_on.isna() | (repairs.decided_on > end))
    warehouse: dict[str, Any] = {
        "objections_raised": int(raised.sum()),
        "objections_resolved": len(resolved),
        "objections_within_term": int((days <= remedies.objection_working_days).sum()),
        "objections_within_max": int((days <= remedies.objection_max_working_days).sum()),
        "objections_open_at_year_end": int(open_at_end.sum()),
        "objection_outcomes": {str(k): int(v) for k, v in
                               resolved.outcome.value_counts().sort_index().items()},
        "repairs_applied": int(repairs.applied_on.between(start, end).sum()),
        "repairs_decided": len(decided),
        "repairs_within_reference": int((repair_days <= REPAIR_REVIEW_WORKING_DAYS).sum()),
        "repairs_pending_at_year_end": int(pending.sum()),
        "repair_decisions": {str(k): int(v) for k, v in
                             decided.decision.value_counts().sort_index().items()},
    }  # fmt: skip
    service: dict[str, Any] | None = None
    if activity is not None:
        service = {
            "objections_raised": activity.objections_raised,
            "objections_resolved": activity.objections_resolved,
            "objections_on_time": activity.objections_resolved_on_time,
            "objections_open_overdue": activity.objections_open_overdue,
            "repairs_applied": activity.repairs_applied,
            "repairs_decided": activity.repairs_decided,
            "repairs_on_time": activity.repairs_decided_on_time,
            "repairs_by_status": dict(activity.repairs_by_status),
        }
    handled = warehouse["objections_resolved"] + (service or {}).get("objections_resolved", 0)
    on_time = warehouse["objections_within_term"] + (service or {}).get("objections_on_time", 0)
    return {
        "objection_working_days": remedies.objection_working_days,
        "objection_max_working_days": remedies.objection_max_working_days,
        "objection_source": remedies.objection_source,
        "repair_reference_working_days": REPAIR_REVIEW_WORKING_DAYS,
        "warehouse": warehouse,
        "service": service,
        "objections_handled": handled,
        "objections_on_time_share": share_of(on_time, handled),
    }


# --------------------------------------------------------------------------------------------
# sections 7 and 8: queries and pre-approvals


def queries_section(activity: ServiceActivity | None) -> dict[str, Any] | None:
    """查询服务 from the service's log; None without service activity."""
    if activity is None:
        return None
    by_purpose = [
        {"purpose": p or "", "name": activity.purpose_names.get(p, p or "未说明用途"), "queries": n}
        for p, n in sorted(activity.queries_by_purpose.items(), key=lambda kv: -kv[1])
    ]
    routes = sorted(activity.queries_by_route.items(), key=lambda kv: -kv[1])
    return {
        "queries": activity.queries,
        "by_purpose": by_purpose,
        "by_route": [{"route": r, "queries": n} for r, n in routes],
        "by_status": {str(k): v for k, v in sorted(activity.queries_by_status.items())},
        "errors": sum(v for k, v in activity.queries_by_status.items() if k >= 400),
        "preapprovals_by_decision": dict(activity.preapprovals_by_decision),
    }


def preapproval_section(
    scored: pd.DataFrame,
    policy: ScoringPolicy,
    *,
    tables: Mapping[str, ir.Table],
    previous: pd.DataFrame | None,
) -> dict[str, Any]:
    """信易贷预授信 by target group, and the previous year end's outcomes when observable."""
    groups: list[dict[str, Any]] = []
    for group in policy.pre_approval.target_groups:
        rows = scored[scored.target_group.astype(str) == group.group]
        approved = rows[rows.decision.astype(str) == "approve"]
        groups.append({
            "group": group.group, "name": group.zh, "entities": len(rows),
            **{d: int((rows.decision.astype(str) == d).sum())
               for d in ("approve", "refer", "decline")},
            "total_limit": int(approved["limit"].sum()),
            "mean_limit": float(approved["limit"].mean()) if len(approved) else None,
            "mean_discount_bp": (float(approved.rate_discount_bp.mean())
                                 if len(approved) else None),
        })  # fmt: skip
    totals = {k: sum(g[k] for g in groups)
              for k in ("entities", "approve", "refer", "decline", "total_limit")}  # fmt: skip
    return {"groups": groups, "totals": totals, "outcomes": _outcomes(tables, previous)}


def _outcomes(tables: Mapping[str, ir.Table], previous: pd.DataFrame | None) -> dict[str, Any]:
    if previous is None:
        return {"status": "no_previous", "as_of": None, "by_decision": []}
    from models.labels import HORIZON_MONTHS, labels, months_after  # noqa: PLC0415

    as_of = pd.Timestamp(previous["as_of"].iloc[0]).date()
    window_end = months_after(as_of, HORIZON_MONTHS)
    delivered = tables["deliveries"].delivered_on.max().to_pandas()
    if delivered is None or pd.isna(delivered) or pd.Timestamp(delivered).date() < window_end:
        return {"status": "not_observable", "as_of": as_of.isoformat(),
                "window_end": window_end.isoformat(), "by_decision": []}  # fmt: skip
    y = labels(tables, as_of).select("uscc", "default_12m").to_pandas()
    joined = previous[["uscc", "decision", "pd"]].merge(y, on="uscc", how="inner",
                                                        validate="one_to_one")  # fmt: skip
    rows = []
    for decision in ("approve", "refer", "decline"):
        part = joined[joined.decision.astype(str) == decision]
        rows.append({
            "decision": decision, "entities": len(part),
            "defaults": int(part.default_12m.sum()),
            "default_rate": float(part.default_12m.mean()) if len(part) else None,
            "predicted_pd": float(part["pd"].mean()) if len(part) else None,
        })  # fmt: skip
    return {"status": "observed", "as_of": as_of.isoformat(),
            "window_end": window_end.isoformat(), "labelled": len(joined),
            "previous_rows": len(previous), "by_decision": rows}  # fmt: skip
