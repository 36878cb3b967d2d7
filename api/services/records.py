"""An entity's public-credit records in the warehouse: the ones an objection or a repair names.

The record tables are those the catalog lets an objection (异议) point at: the codes of
``credit_objections.record_table`` (administrative penalties, the serious dishonesty list,
dishonest judgment debtors, abnormal operations, credit commitments, registered private
loans). Each has a one-column key (the ``record_id`` of an objection or repair) and a
subject column. A record is an entity's own when it is filed under the entity's USCC or,
for a 个体工商户, under its operator's resident ID (as the view maps them:
`features.view.ViewContext.subjects`); a record filed under an operator's ID is then the
record of every business that person operates.

The warehouse (DuckDB) is opened read only, one short connection per lookup. Records carry
personal identifiers: they are shown to their subject only and never logged.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from api.errors import NotFound, ServiceError, Unavailable
from api.security import Role
from api.services.directory import Directory, EntityFacts
from features.catalog import Catalog, load_catalog
from features.validation import quote

#: the catalog items that say which tables objections and repairs may point at
OBJECTIONS_ITEM = "credit_objections"
REPAIRS_ITEM = "credit_repairs"


class ObjectionStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class ObjectionOutcome(StrEnum):
    """How an objection ended: the catalog's ``credit_objections.outcome`` codes."""

    CORRECTED = "更正"
    DELETED = "删除"
    UPHELD = "维持"
    ANNOTATED = "标注"


#: outcomes that take a record out for good; 维持 and 标注 bring it back
REMOVING_OUTCOMES = (ObjectionOutcome.CORRECTED, ObjectionOutcome.DELETED)


class RepairStatus(StrEnum):
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"


#: our repair states → the catalog's ``credit_repairs.decision`` codes
REPAIR_DECISIONS: dict[RepairStatus, str] = {
    RepairStatus.UNDER_REVIEW: "审核中",
    RepairStatus.APPROVED: "批准",
    RepairStatus.REJECTED: "驳回",
}


@dataclass(frozen=True, slots=True)
class RecordTable:
    """A table of public-credit records: its key, its subject column and its columns."""

    name: str
    title: str
    key: str
    subject: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One record: its table, id, subject (USCC or resident ID) and catalog columns."""

    table: str
    record_id: str
    subject_id: str
    fields: dict[str, Any]


@functools.cache
def _catalog() -> Catalog:
    return load_catalog()


def _codes(item: str) -> dict[str, str]:
    codes = _catalog().item(item).columns["record_table"].codes
    return dict(codes or {})


def _subject_column(table: str) -> str:
    """The column of ``table`` that names the record's subject (references entities.uscc)."""
    item = _catalog().item(table)
    for name, column in item.columns.items():
        if "entities.uscc" in column.references:
            return name
    raise AssertionError(f"catalog item {table} has no subject column")


@functools.cache
def record_tables() -> dict[str, RecordTable]:
    """The record tables an objection may name (catalog ``credit_objections.record_table``)."""
    out = {}
    for name, title in _codes(OBJECTIONS_ITEM).items():
        item = _catalog().item(name)
        if len(item.key) != 1:
            raise AssertionError(f"catalog item {name} needs a one-column key to be objected to")
        out[name] = RecordTable(name, title, item.key[0], _subject_column(name), item.column_names)
    return out


@functools.cache
def repairable_tables() -> frozenset[str]:
    """The record tables a repair may name (catalog ``credit_repairs.record_table``)."""
    return frozenset(_codes(REPAIRS_ITEM))


def record_table(name: str, field: str = "record_table") -> RecordTable:
    """The record table ``name``; a `ServiceError` naming the allowed codes otherwise."""
    table = record_tables().get(name)
    if table is None:
        allowed = ", ".join(record_tables())
        raise ServiceError(field, "catalog_code", f"a record table of the catalog: {allowed}")
    return table


def subjects_of(facts: EntityFacts) -> tuple[str, ...]:
    """The identifiers an entity's records are filed under: its USCC, and a 个体工商户's
    operator's resident ID."""
    return (facts.uscc, facts.legal_rep_id) if facts.natural_person else (facts.uscc,)


def belongs_to(record: Record, facts: EntityFacts) -> bool:
    """Whether ``record`` is a record of the entity ``facts``."""
    return record.subject_id in subjects_of(facts)


def entities_of(record: Record, directory: Directory) -> tuple[str, ...]:
    """USCCs of the entities the record belongs to (the businesses of an operator's ID)."""
    if record.subject_id in directory.entities:
        return (record.subject_id,)
    return directory.businesses_of(record.subject_id)


def own_entities(directory: Directory, role: Role, subject_id: str | None) -> tuple[str, ...]:
    """The entities a subject key speaks for: its own USCC, or the businesses it operates."""
    if role is not Role.SUBJECT or not subject_id:
        return ()
    own = (subject_id,) if subject_id in directory.entities else ()
    return own + directory.businesses_of(subject_id)


def _value(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@dataclass(frozen=True)
class RecordStore:
    """Read-only lookups of records in the warehouse at ``warehouse``."""

    warehouse: Path

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.warehouse.exists():
            raise Unavailable("warehouse", "exists", "the warehouse is not available")
        return duckdb.connect(str(self.warehouse), read_only=True)

    def _select(
        self, con: duckdb.DuckDBPyConnection, table: RecordTable, where: str, params: list[Any]
    ) -> list[Record]:
        columns = ", ".join(quote(c) for c in table.columns)
        rows = con.execute(
            f"SELECT {columns} FROM {quote(table.name)} WHERE {where} ORDER BY {quote(table.key)}",
            params,
        ).fetchall()
        out = []
        for row in rows:
            fields = {c: _value(v) for c, v in zip(table.columns, row, strict=True)}
            out.append(
                Record(table.name, str(fields[table.key]), str(fields[table.subject]), fields)
            )
        return out

    def find(self, table_name: str, record_id: str) -> Record:
        """The record ``record_id`` of ``table_name``; `NotFound` if there is none."""
        table = record_table(table_name)
        with self._connect() as con:
            found = self._select(con, table, f"{quote(table.key)} = ?", [record_id])
        if not found:
            raise NotFound("record_id", "exists", f"no record with this id in {table_name}")
        return found[0]

    def of_entity(self, facts: EntityFacts, tables: Iterable[str] | None = None) -> list[Record]:
        """Every record of the entity, table by table (catalog order), then by id."""
        subjects = list(subjects_of(facts))
        marks = ", ".join("?" for _ in subjects)
        out: list[Record] = []
        with self._connect() as con:
            for name in tables or record_tables():
                table = record_table(name)
                out.extend(
                    self._select(con, table, f"{quote(table.subject)} IN ({marks})", subjects)
                )
        return out

    def removed_by_warehouse(self, table_name: str, record_ids: Sequence[str]) -> set[str]:
        """Ids among ``record_ids`` that the warehouse's own objections (更正 or 删除) or
        approved repairs (批准) took out for good."""
        if not record_ids:
            return set()
        marks = ", ".join("?" for _ in record_ids)
        outcomes = ", ".join(f"'{o.value}'" for o in REMOVING_OUTCOMES)
        approved = REPAIR_DECISIONS[RepairStatus.APPROVED]
        with self._connect() as con:
            rows = con.execute(
                f"SELECT record_id FROM {quote(OBJECTIONS_ITEM)} WHERE record_table = ? "
                f"AND outcome IN ({outcomes}) AND record_id IN ({marks}) "
                f"UNION SELECT record_id FROM {quote(REPAIRS_ITEM)} WHERE record_table = ? "
                f"AND decision = '{approved}' AND record_id IN ({marks})",
                [table_name, *record_ids, table_name, *record_ids],
            ).fetchall()
        return {str(row[0]) for row in rows}


def listed_on(record: Record, day: dt.date) -> bool:
    """Whether a listing record (``listed_on`` / ``removed_on``) is in force on ``day``."""
    start, end = record.fields.get("listed_on"), record.fields.get("removed_on")
    return start is not None and start <= day and (end is None or end > day)
