"""The annual platform operation analysis report (年度运行分析报告) of one calendar year.

`annual_report` gathers the figures of every section from plain inputs — the warehouse
tables (Ibis, as `features.view.engine.duckdb_tables` opens them), the score snapshot as of
the year end, the view it was scored from, optionally the snapshot of the previous year end
and the service's activity (`ServiceActivity`, aggregates of the service database) — into an
`AnnualReport`; `render_annual` turns it into one self-contained HTML page in Chinese.

Sections and where their numbers come from:

1. 概览: key figures of the sections below.
2. 数据归集: the delivery ledger (``deliveries``, ``delivery_tables``, ``quarantine``) for
   deliveries received in the year, by department; accepted records dated in the year by
   catalog item (`EVENT_DATES`) with their completeness; 双公示 timeliness of decisions made
   in the year (working days as in `features.quality`).
3. 主体覆盖: the view's source flags of the scored entities (government record, PBOC file,
   registered private loan) and their overlap; thin-file (no credit history) entities.
4. 信用等级与分类监管: snapshot grades and supervision classes by district and industry.
5. 红黑名单: list records in force at the year end and new in the year (as delivered), and
   the scored entities the view flags at the year end (after objections and repairs).
6. 异议与信用修复: the credit office's records (``credit_objections``, ``credit_repairs``)
   and, when given, those raised through the service; on time = settled within the policy's
   working days (objections) or `REPAIR_REVIEW_WORKING_DAYS` (repairs, a reference time).
7. 查询服务: the service's query log by purpose, route and status (`ServiceActivity`).
8. 信易贷预授信: snapshot decisions by target group; outcomes of the previous year end's
   decisions (`models.labels`) when that snapshot is given and the warehouse covers the
   12 months after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features.catalog import Catalog
from features.view.engine import packaged_catalog
from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy, load_policy
from scoring.reports.annual_sections import (
    DECISION_NAMES,
    EVENT_DATES,
    LISTS,
    REPAIR_REVIEW_WORKING_DAYS,
    VIEW_COLUMNS,
    ServiceActivity,
    as_frame,
    collection_section,
    coverage_section,
    grades_section,
    lists_section,
    preapproval_section,
    queries_section,
    remedies_section,
    share_of,
    working_days,
)
from scoring.reports.render import chart, figure, render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnualReport:
    """The figures of the annual report, one attribute per section (JSON-ready values)."""

    year: int
    as_of: str
    snapshot_rows: int
    overview: dict[str, Any]
    collection: dict[str, Any]
    coverage: dict[str, Any]
    grades: dict[str, Any]
    lists: list[dict[str, Any]]
    remedies: dict[str, Any]
    queries: dict[str, Any] | None
    preapproval: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every figure."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# the report


def _as_of(frame: pd.DataFrame, name: str) -> dt.date:
    values = pd.to_datetime(frame["as_of"]).dt.date.unique()
    if len(values) != 1:
        raise ScoringError(name, "one_as_of", f"one as-of date expected, got {len(values)}")
    return values[0]  # type: ignore[no-any-return]


def annual_report(
    tables: Mapping[str, ir.Table],
    year: int,
    snapshot: pa.Table | pd.DataFrame,
    *,
    view: pa.Table | pd.DataFrame | None = None,
    previous: pa.Table | pd.DataFrame | None = None,
    activity: ServiceActivity | None = None,
    policy: ScoringPolicy | None = None,
    catalog: Catalog | None = None,
) -> AnnualReport:
    """The figures of the annual report of ``year``.

    Parameters
    ----------
    tables
        Warehouse tables (`features.view.engine.duckdb_tables`); the ledger tables
        ``delivery_tables`` and ``quarantine`` are read from the same backend if absent.
    year
        The calendar year reported.
    snapshot
        The score snapshot (`scoring.batch.SnapshotStore.read`) as of a day in ``year``,
        normally its last day.
    view
        The view the snapshot was scored from (one row per scored entity at least); built
        from ``tables`` at the snapshot's as-of date when not given.
    previous
        The snapshot of the previous year end, for the realised outcomes of section 8.
    activity
        The service's activity in ``year`` (`api.services.activity.service_activity`).
    policy, catalog
        The scoring policy and the catalog (the packaged ones by default).

    Returns
    -------
    AnnualReport
    """
    policy = policy or load_policy()
    catalog = catalog or packaged_catalog()
    scores = as_frame(snapshot)
    as_of = _as_of(scores, "snapshot")
    if as_of.year != year:
        raise ScoringError("snapshot", "as_of_in_year", f"snapshot as of {as_of}, not in {year}")
    if view is None:
        from features.view import build_view  # noqa: PLC0415 - only when no view is given

        view = build_view(tables, as_of).table
    rows = as_frame(view)[list(VIEW_COLUMNS)]
    scored = scores.merge(rows, on="uscc", how="left", validate="one_to_one", indicator=True)
    if (scored.pop("_merge") != "both").any():
        raise ScoringError("view", "covers_snapshot", "scored entities missing from the view")
    previous_frame = None if previous is None else as_frame(previous)
    collection = collection_section(tables, year, catalog)
    coverage = coverage_section(scored)
    grades = grades_section(scored, policy, catalog)
    lists = lists_section(tables, year, scored)
    remedies = remedies_section(tables, year, policy, activity)
    queries = queries_section(activity)
    preapproval = preapproval_section(scored, policy, tables=tables, previous=previous_frame)
    received = sum(d["rows_in"] for d in collection["by_department"])
    quarantined = sum(d["quarantined"] for d in collection["by_department"])
    by_list = {entry["table"]: entry for entry in lists}
    overview = {
        "entities_scored": len(scored),
        "deliveries": collection["deliveries"],
        "rows_received": received,
        "validity": share_of(received - quarantined, received),
        "records_of_year": sum(r["records"] for r in collection["records"]),
        "pboc_coverage": share_of(coverage["by_source"]["pboc_has_file"], len(scored)),
        "red_list_in_force": by_list["red_list"]["in_force"],
        "blacklist_in_force": by_list["serious_dishonesty"]["in_force"],
        "objections_handled": remedies["objections_handled"],
        "objections_on_time_share": remedies["objections_on_time_share"],
        "queries": None if queries is None else queries["queries"],
        "approved": preapproval["totals"]["approve"],
        "approved_limit": preapproval["totals"]["total_limit"],
    }
    logger.info("annual report %d: %d scored entities as of %s", year, len(scored), as_of)
    return AnnualReport(
        year=year, as_of=as_of.isoformat(), snapshot_rows=len(scored), overview=overview,
        collection=collection, coverage=coverage, grades=grades, lists=lists,
        remedies=remedies, queries=queries, preapproval=preapproval,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# rendering


def _bar_chart(labels: list[str], values: list[float], title: str, *, horizontal: bool) -> Any:
    fig, ax = figure(6.0, max(2.4, 0.32 * len(labels) + 1) if horizontal else 3.2)
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color="#1f5fa6")
    else:
        ax.bar(labels, values, color="#1f5fa6")
    ax.set_title(title, fontsize=10)
    return chart(fig)


def _stacked_chart(
    rows: list[dict[str, Any]],
    order: list[str],
    title: str,
    labels: Mapping[str, str] | None = None,
) -> Any:
    fig, ax = figure(6.0, max(2.6, 0.3 * len(rows) + 1.2))
    names = [r["name"] for r in rows][::-1]
    left = np.zeros(len(rows))
    colours = matplotlib_colours(len(order))
    for key, colour in zip(order, colours, strict=True):
        values = np.array([r["counts"][key] for r in rows][::-1], dtype=float)
        ax.barh(names, values, left=left, label=(labels or {}).get(key, key), color=colour)
        left += values
    ax.legend(fontsize=7, ncol=min(len(order), 8), loc="lower right", frameon=False)
    ax.set_title(title, fontsize=10)
    return chart(fig)


def matplotlib_colours(n: int) -> list[Any]:
    """``n`` colours from green (best) to red (worst)."""
    from matplotlib import colormaps  # noqa: PLC0415

    return [colormaps["RdYlGn_r"](x) for x in np.linspace(0.05, 0.95, n)]


def render_annual(report: AnnualReport) -> str:
    """The annual report as one self-contained HTML page in Chinese (charts embedded)."""
    c, g, p = report.collection, report.grades, report.preapproval
    charts: dict[str, Any] = {}
    if c["by_department"]:
        charts["departments"] = _bar_chart(
            [d["department"] for d in c["by_department"]],
            [d["accepted"] for d in c["by_department"]], "本年度入库记录数（按部门）",
            horizontal=True)  # fmt: skip
    records = [r for r in c["records"] if r["records"]]
    if records:
        charts["records"] = _bar_chart(
            [r["name"] for r in records],
            [r["records"] for r in records],
            "本年度发生的记录数（按目录项）",
            horizontal=True,
        )
    combos = report.coverage["combinations"]
    charts["coverage"] = _bar_chart(
        [_combo_label(r) for r in combos], [r["entities"] for r in combos],
        "评分主体的数据来源组合", horizontal=True)  # fmt: skip
    charts["grade_district"] = _stacked_chart(g["grade_by_district"], g["grade_names"],
                                              "信用等级分布（按区县）")  # fmt: skip
    charts["class_industry"] = _stacked_chart(g["class_by_industry"], g["class_names"],
                                              "分类监管类别分布（按行业）")  # fmt: skip
    charts["lists"] = _bar_chart([entry["name"] for entry in report.lists],
                                 [entry["in_force"] for entry in report.lists],
                                 "年末有效名单记录数", horizontal=True)  # fmt: skip
    decisions = list(DECISION_NAMES)
    charts["preapproval"] = _stacked_chart(
        [{"name": r["name"], "counts": {d: r[d] for d in decisions}} for r in p["groups"]],
        decisions,
        "预授信结果（按目标群体）",
        DECISION_NAMES,
    )
    if report.queries and report.queries["by_purpose"]:
        charts["queries"] = _bar_chart([r["name"] for r in report.queries["by_purpose"]],
                                       [r["queries"] for r in report.queries["by_purpose"]],
                                       "查询量（按用途）", horizontal=True)  # fmt: skip
    return render("annual.html.j2", report=report, charts=charts, decisions=DECISION_NAMES)


def _combo_label(row: Mapping[str, Any]) -> str:
    parts = [name for key, name in (("gov", "政务"), ("pboc", "征信"),
                                     ("private_lending", "民间借贷")) if row[key]]  # fmt: skip
    return "＋".join(parts) if parts else "均无"


__all__ = [
    "EVENT_DATES",
    "LISTS",
    "REPAIR_REVIEW_WORKING_DAYS",
    "AnnualReport",
    "ServiceActivity",
    "annual_report",
    "collection_section",
    "coverage_section",
    "grades_section",
    "lists_section",
    "preapproval_section",
    "queries_section",
    "remedies_section",
    "render_annual",
    "working_days",
]
