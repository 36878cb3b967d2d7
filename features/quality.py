"""Data quality of the warehouse, per table and department (数据质量).

Measures, for every catalog table:

- **completeness**: share of non-empty cells in accepted rows, overall and per column;
- **validity**: share of delivered rows accepted;
- **duplicate rate** and **orphan rate**: share of delivered rows quarantined as duplicates
  (within a delivery or of a warehouse row) and as orphans (subject not in the registry);
- **publication timeliness** (双公示) for items with a publication rule: share of decisions
  published within the catalog's working-day limit of the decision date, counted with Chinese
  statutory holidays and adjusted working days (``chinese-calendar``), overall and per
  deciding authority.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chinese_calendar
import duckdb
import numpy as np
import pyarrow as pa

from features.catalog import Catalog, CatalogItem, load_catalog
from features.validation import quote
from features.warehouse import connect, ensure_schema, fetch_row

logger = logging.getLogger(__name__)

_DUPLICATE_RULES = ("duplicate", "duplicate_existing")
_ORPHAN_RULES = ("orphan",)


def is_working_day(day: dt.date) -> bool:
    """Whether ``day`` is a Chinese working day (adjusted 调休 Saturdays count as working).

    Years that ``chinese-calendar`` does not cover fall back to Monday–Friday.

    Examples
    --------
    >>> is_working_day(dt.date(2019, 10, 1))   # National Day
    False
    >>> is_working_day(dt.date(2019, 9, 29))   # a Sunday made a working day
    True
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 if ``end <= start``).

    Examples
    --------
    >>> working_days_between(dt.date(2019, 9, 30), dt.date(2019, 10, 8))  # holiday week
    1
    """
    return int(working_day_index(start, end)[-1]) if end > start else 0


def working_day_index(start: dt.date, end: dt.date) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Cumulative working-day count for each day from ``start`` to ``end`` (start counts 0).

    The working days between two days of the span are the difference of their entries: one
    calendar serves any number of date pairs.

    Examples
    --------
    >>> working_day_index(dt.date(2019, 9, 30), dt.date(2019, 10, 8)).tolist()
    [0, 0, 0, 0, 0, 0, 0, 0, 1]
    """
    days = (end - start).days + 1
    flags = [is_working_day(start + dt.timedelta(days=i)) if i else False for i in range(days)]
    return np.cumsum(np.array(flags, dtype=np.int64))


@dataclass(frozen=True)
class TableQuality:
    """Quality figures of one table (shares are in [0, 1]; None when not applicable)."""

    table: str
    department: str
    rows_in: int
    accepted: int
    quarantined: int
    completeness: float | None
    validity: float | None
    duplicate_rate: float | None
    orphan_rate: float | None
    timeliness: float | None = None
    late_publications: int | None = None
    column_completeness: dict[str, float] = field(default_factory=dict)
    quarantine_rules: dict[str, int] = field(default_factory=dict)
    timeliness_by_authority: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityReport:
    """The data quality report for a warehouse (optionally one delivery)."""

    generated_at: dt.datetime
    delivery_id: str | None
    working_day_limit: int
    tables: tuple[TableQuality, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``wzcredit quality`` writes it)."""
        return {
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "delivery_id": self.delivery_id,
            "working_day_limit": self.working_day_limit,
            "tables": [t.__dict__ for t in self.tables],
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Any:
    row = fetch_row(con, sql, params)
    return None if row is None else row[0]


def _table_quality(
    con: duckdb.DuckDBPyConnection,
    item: CatalogItem,
    delivery_id: str | None,
    limit: int,
) -> TableQuality:
    where = "WHERE delivery_id = ?" if delivery_id else ""
    params: list[Any] = [delivery_id] if delivery_id else []
    rows_in = int(
        _scalar(
            con,
            f"SELECT coalesce(sum(rows_in), 0) FROM delivery_tables {where}"
            + (" AND" if where else " WHERE")
            + " table_name = ?",
            [*params, item.table],
        )
    )
    rules = dict(
        con.execute(
            f"SELECT rule, count(*) FROM quarantine {where}"
            + (" AND" if where else " WHERE")
            + " table_name = ? GROUP BY rule ORDER BY rule",
            [*params, item.table],
        ).fetchall()
    )
    quarantined = sum(rules.values())
    table = f"main.{quote(item.table)}"
    accepted_filter = "WHERE _delivery_id = ?" if delivery_id else ""
    counts = ", ".join(f"count({quote(c)})" for c in item.column_names)
    row = fetch_row(con, f"SELECT count(*), {counts} FROM {table} {accepted_filter}", params)
    assert row is not None
    accepted = int(row[0])
    per_column = (
        {c: n / accepted for c, n in zip(item.column_names, row[1:], strict=True)}
        if accepted
        else {}
    )
    completeness = sum(per_column.values()) / len(per_column) if per_column else None

    timeliness = late = None
    by_authority: dict[str, float] = {}
    if item.publication_rule is not None and accepted:
        timeliness, late, by_authority = _timeliness(con, item, accepted_filter, params, limit)
    return TableQuality(
        table=item.table,
        department=item.source,
        rows_in=rows_in,
        accepted=accepted,
        quarantined=quarantined,
        completeness=completeness,
        validity=_share(rows_in - quarantined, rows_in),
        duplicate_rate=_share(sum(rules.get(r, 0) for r in _DUPLICATE_RULES), rows_in),
        orphan_rate=_share(sum(rules.get(r, 0) for r in _ORPHAN_RULES), rows_in),
        timeliness=timeliness,
        late_publications=late,
        column_completeness=per_column,
        quarantine_rules=rules,
        timeliness_by_authority=by_authority,
    )


def _timeliness(
    con: duckdb.DuckDBPyConnection,
    item: CatalogItem,
    accepted_filter: str,
    params: list[Any],
    limit: int,
) -> tuple[float | None, int, dict[str, float]]:
    rule = item.publication_rule
    assert rule is not None
    decided, published = quote(rule.decision), quote(rule.publication)
    table = f"main.{quote(item.table)}"
    span = fetch_row(
        con, f"SELECT min({decided}), max({published}) FROM {table} {accepted_filter}", params
    )
    if span is None or span[0] is None or span[1] is None or span[1] < span[0]:
        return None, 0, {}
    start, end = span
    index = working_day_index(start, end)
    days = np.array(
        [start + dt.timedelta(days=i) for i in range(len(index))], dtype="datetime64[D]"
    )
    calendar = pa.table({"day": pa.array(days, pa.date32()), "wd": pa.array(index)})
    con.register("_working_days", calendar)
    try:
        authority = quote("authority") if "authority" in item.columns else "'(all)'"
        rows = con.execute(
            f"""SELECT {authority} AS authority, count(*) AS n,
                       count_if(p.wd - d.wd <= {limit}) AS on_time
                FROM {table} x
                JOIN _working_days d ON d.day = x.{decided}
                JOIN _working_days p ON p.day = x.{published}
                {accepted_filter.replace("_delivery_id", "x._delivery_id")}
                GROUP BY ALL ORDER BY authority""",
            params,
        ).fetchall()
    finally:
        con.unregister("_working_days")
    total = sum(int(n) for _, n, _ in rows)
    on_time = sum(int(k) for _, _, k in rows)
    by_authority = {str(a): int(k) / int(n) for a, n, k in rows if n}
    return _share(on_time, total), total - on_time, by_authority


def quality_report(
    warehouse: Path | str,
    *,
    catalog: Catalog | None = None,
    delivery_id: str | None = None,
) -> QualityReport:
    """Compute the data quality report of ``warehouse`` (all deliveries, or one)."""
    catalog = catalog or load_catalog()
    limit = int(catalog.publication_rule.get("working_days", 7))
    con = connect(warehouse)
    try:
        ensure_schema(con, catalog)
        tables = tuple(_table_quality(con, item, delivery_id, limit) for item in catalog.items)
    finally:
        con.close()
    return QualityReport(dt.datetime.now(), delivery_id, limit, tables)
