"""Ingest a departmental delivery into the warehouse, quarantining bad rows with reasons.

A delivery is a folder with one file per catalog table (``<table>.parquet`` or
``<table>.csv``, UTF-8 with a header row) and an optional ``delivery.json`` giving
``delivery_id`` and ``delivered_on``. Guarantees:

- rows in = rows accepted + rows quarantined, for every table (checked before commit);
- the whole delivery is one transaction: an error or an interruption leaves the warehouse
  exactly as it was;
- a malformed file (unknown table, wrong columns, bad encoding, not CSV/Parquet) refuses the
  delivery before anything is written;
- re-ingesting a delivery already in the ledger adds nothing; the same id with different
  contents is refused.

"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.area_codes import AreaCodeHistory, load_area_codes
from features.catalog import Catalog, CatalogItem, load_catalog
from features.errors import DeliveryConflictError, DeliveryError
from features.files import file_sha256
from features.validation import RowValidator, literal, quote, v_
from features.warehouse import (
    assign_keys,
    connect,
    delivery_ingested,
    ensure_schema,
    fetch_row,
    key_columns,
    keyed_select,
)

logger = logging.getLogger(__name__)

DELIVERY_FILE = "delivery.json"
_METADATA_FILES = {DELIVERY_FILE, "manifest.json"}
_FORMATS = {".parquet": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class DeliveryFile:
    """One delivered file, checked for structure but not yet validated row by row."""

    table: str
    path: Path
    format: Literal["parquet", "csv"]
    sha256: str
    input_types: dict[str, str]
    arrow: pa.Table | None = None  # CSV content (with ``_row``) read during the structure check


@dataclass(frozen=True)
class Delivery:
    """A delivery folder whose files all passed the structure check."""

    directory: Path
    delivery_id: str
    delivered_on: dt.date
    fingerprint: str
    files: tuple[DeliveryFile, ...]


@dataclass(frozen=True)
class TableOutcome:
    """What happened to one delivered table."""

    table: str
    department: str
    file: str
    rows_in: int
    accepted: int
    quarantined: int
    rules: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to a delivery; ``status`` is ``already_ingested`` for a repeat."""

    delivery_id: str
    status: Literal["ingested", "already_ingested"]
    delivered_on: dt.date
    tables: dict[str, TableOutcome]

    @property
    def rows_in(self) -> int:
        """Rows delivered over all tables."""
        return sum(t.rows_in for t in self.tables.values())

    @property
    def accepted(self) -> int:
        """Rows accepted over all tables."""
        return sum(t.accepted for t in self.tables.values())

    @property
    def quarantined(self) -> int:
        """Rows quarantined over all tables."""
        return sum(t.quarantined for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``wzcredit ingest --json`` output)."""
        return {
            "delivery_id": self.delivery_id,
            "status": self.status,
            "delivered_on": self.delivered_on.isoformat(),
            "rows_in": self.rows_in,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "tables": {
                name: {
                    "department": t.department,
                    "file": t.file,
                    "rows_in": t.rows_in,
                    "accepted": t.accepted,
                    "quarantined": t.quarantined,
                    "rules": t.rules,
                    "repaired": t.repaired,
                }
                for name, t in self.tables.items()
            },
        }


# --------------------------------------------------------------------------------------------
# Structure check (reads, never writes)
# --------------------------------------------------------------------------------------------
def _check_columns(item: CatalogItem, found: list[str], file_name: str) -> None:
    missing = [c for c in item.column_names if c not in found]
    unexpected = [c for c in found if c not in item.columns]
    duplicated = sorted({c for c in found if found.count(c) > 1})
    if missing or unexpected or duplicated:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unexpected:
            parts.append(f"unexpected {unexpected}")
        if duplicated:
            parts.append(f"repeated {duplicated}")
        raise DeliveryError(
            file_name,
            "columns",
            f"columns do not match catalog item {item.table!r}: " + "; ".join(parts),
        )


def _read_csv(item: CatalogItem, path: Path) -> pa.Table:
    """Read a CSV delivery as text columns, refusing bad encoding and broken structure."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(io.StringIO(handle.readline())), [])
    except UnicodeDecodeError as exc:
        raise DeliveryError(
            path.name, "encoding", f"not UTF-8 (byte {exc.start} of the header line)"
        ) from exc
    header = [h.strip() for h in header]
    _check_columns(item, header, path.name)
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8", use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=",", newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        text = str(exc)
        rule = "encoding" if "UTF8" in text or "utf-8" in text.lower() else "csv_structure"
        raise DeliveryError(path.name, rule, f"cannot be read as UTF-8 CSV: {text}") from exc
    table = table.rename_columns([c.lstrip("\ufeff").strip() for c in table.column_names])
    rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    return table.append_column("_row", rows)


def _parquet_types(item: CatalogItem, path: Path) -> dict[str, str]:
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DeliveryError(path.name, "format", f"not a Parquet file: {exc}") from exc
    _check_columns(item, list(schema.names), path.name)
    probe = duckdb.connect()
    try:
        described = probe.execute(
            f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})"
        ).fetchall()
    except duckdb.Error as exc:
        raise DeliveryError(path.name, "format", f"unreadable Parquet: {exc}") from exc
    finally:
        probe.close()
    return {str(name): str(dtype) for name, dtype, *_ in described}


def _read_delivery_json(directory: Path) -> dict[str, Any]:
    path = directory / DELIVERY_FILE
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeliveryError(DELIVERY_FILE, "json", f"not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DeliveryError(DELIVERY_FILE, "json", "must be a JSON object")
    return meta


def read_delivery(
    directory: Path,
    catalog: Catalog,
    *,
    delivery_id: str | None = None,
    delivered_on: dt.date | None = None,
) -> Delivery:
    """Check a delivery folder's structure and identity without writing anything.

    Raises
    ------
    DeliveryError
        For a missing folder, an empty delivery, an unknown table, a table delivered twice,
        columns that differ from the catalog, bad encoding or an unreadable file.
    """
    if not directory.is_dir():
        raise DeliveryError("directory", "not_found", f"{directory} is not a folder")
    meta = _read_delivery_json(directory)
    by_table: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.is_dir() or path.name in _METADATA_FILES or path.name.startswith("."):
            continue
        if path.suffix.lower() not in _FORMATS:
            raise DeliveryError(path.name, "format", "only .csv and .parquet files are accepted")
        if path.stem not in catalog.tables:
            raise DeliveryError(path.name, "unknown_table", f"{path.stem!r} is not a catalog item")
        if path.stem in by_table:
            raise DeliveryError(path.name, "ambiguous", f"{path.stem!r} is delivered twice")
        by_table[path.stem] = path
    if not by_table:
        raise DeliveryError("directory", "empty_delivery", f"no data files in {directory}")

    files = []
    for table in catalog.ingest_order():
        if table not in by_table:
            continue
        path, item = by_table[table], catalog.item(table)
        if _FORMATS[path.suffix.lower()] == "csv":
            arrow = _read_csv(item, path)
            types = dict.fromkeys(item.column_names, "VARCHAR")
            files.append(DeliveryFile(table, path, "csv", file_sha256(path), types, arrow))
        else:
            types = _parquet_types(item, path)
            files.append(DeliveryFile(table, path, "parquet", file_sha256(path), types))

    fingerprint = hashlib.sha256(
        "\n".join(f"{f.table}:{f.sha256}" for f in files).encode()
    ).hexdigest()
    chosen_id = delivery_id or meta.get("delivery_id") or f"delivery-{fingerprint[:16]}"
    on = delivered_on or meta.get("delivered_on") or dt.date.today()
    if isinstance(on, str):
        try:
            on = dt.date.fromisoformat(on)
        except ValueError as exc:
            raise DeliveryError("delivered_on", "type", f"{on!r} is not YYYY-MM-DD") from exc
    return Delivery(directory, str(chosen_id), on, fingerprint, tuple(files))


# --------------------------------------------------------------------------------------------
# Validation and loading (inside one transaction)
# --------------------------------------------------------------------------------------------
def _source_sql(file: DeliveryFile, item: CatalogItem, view: str) -> str:
    columns = ", ".join(quote(c) for c in item.column_names)
    if file.format == "csv":
        return f"SELECT _row, {columns} FROM {view}"
    path = literal(str(file.path))
    return (
        f"SELECT file_row_number + 1 AS _row, {columns} "
        f"FROM read_parquet({path}, file_row_number = true)"
    )


#: the rows of ``_stage`` not (yet) rejected
_ACCEPTED = "NOT EXISTS (SELECT 1 FROM _rejected r WHERE r._row = s._row)"


def _cross_row_sql(item: CatalogItem) -> str:
    """SQL listing rows valid on their own that break a rule across rows.

    A later row with the key of an earlier valid row is a ``duplicate``; a row whose key is
    already in the warehouse is ``duplicate_existing``; a reference found in none of its
    target tables is an ``orphan``. Reads ``_stage`` (typed ``v__`` columns) and skips rows
    already in ``_rejected``.
    """
    keys = ", ".join(v_(k) for k in item.key)
    on_key = " AND ".join(f"t.{quote(k)} = s.{v_(k)}" for k in item.key)
    on_group = " AND ".join(f"d.{v_(k)} = s.{v_(k)}" for k in item.key)
    label = ",".join(item.key)
    terms = [
        ("(d._first IS NOT NULL AND s._row > d._first)", f"{label}:duplicate"),
        (
            f"EXISTS (SELECT 1 FROM main.{quote(item.table)} t WHERE {on_key})",
            f"{label}:duplicate_existing",
        ),
    ]
    for column, refs in item.references().items():
        absent = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM main.{quote(t)} r WHERE r.{quote(c)} = s.{v_(column)})"
            for t, c in refs
        )
        terms.append((f"(s.{v_(column)} IS NOT NULL AND {absent})", f"{column}:orphan"))
    flags = ", ".join(f"{cond} AS _f{i}" for i, (cond, _) in enumerate(terms))
    pick = " ".join(f"WHEN _f{i} THEN {literal(lbl)}" for i, (_, lbl) in enumerate(terms))
    # keys seen more than once among the valid rows, with the row that came first (a hash
    # aggregate: much cheaper than a window sort when duplicates are rare)
    repeated = (
        f"SELECT {keys}, min(s._row) AS _first FROM _stage s WHERE {_ACCEPTED} "
        f"GROUP BY ALL HAVING count(*) > 1"
    )
    return (
        f"SELECT _row, CASE {pick} END AS _error, TRUE AS _cross FROM "
        f"(SELECT s._row, {flags} FROM _stage s LEFT JOIN ({repeated}) d ON {on_group} "
        f"WHERE {_ACCEPTED}) "
        f"WHERE {' OR '.join(f'_f{i}' for i in range(len(terms)))}"
    )


def _ingest_table(
    con: duckdb.DuckDBPyConnection,
    file: DeliveryFile,
    item: CatalogItem,
    delivery: Delivery,
    catalog: Catalog,
    area_codes: AreaCodeHistory,
) -> TableOutcome:
    """Validate one delivered table and load it, inside the caller's transaction.

    ``_stage`` materialises every row once with its typed values and check inputs (see
    `ColumnSql`); ``_rejected`` lists the rows that fail a row rule or a cross-row rule;
    everything else is accepted. Quarantined rows are read again from the delivered file,
    so that they are kept exactly as delivered.
    """
    view = f"_delivered_{item.table}"
    if file.arrow is not None:
        con.register(view, file.arrow)
    validator = RowValidator(
        item, file.input_types, delivery.delivered_on, catalog.min_date, area_codes
    )
    source = _source_sql(file, item, view)
    con.execute("DROP TABLE IF EXISTS _stage; DROP TABLE IF EXISTS _rejected")
    con.execute(f"CREATE TEMP TABLE _stage AS {validator.stage_sql(source)}")
    con.execute(
        "CREATE TEMP TABLE _rejected AS SELECT _row, _error, FALSE AS _cross FROM "
        f"(SELECT _row, {validator.first_error_sql()} AS _error FROM _stage) "
        "WHERE _error IS NOT NULL"
    )
    con.execute(f"INSERT INTO _rejected {_cross_row_sql(item)}")

    did = literal(delivery.delivery_id)
    keys = key_columns(item)
    assign_keys(con, [f"SELECT DISTINCT {v_(c)} FROM _stage s WHERE {_ACCEPTED}" for c in keys])
    accepted_rows = (
        f"SELECT {', '.join(validator.values_sql())}, {did} AS _delivery_id, _row AS _source_row "
        f"FROM _stage s WHERE {_ACCEPTED}"
    )
    con.execute(f"INSERT INTO main.{quote(item.table)} {keyed_select(item, accepted_rows)}")
    original = ", ".join(f"{quote(c)} := d.{quote(c)}" for c in item.column_names)
    con.execute(
        f"""INSERT INTO quarantine
        SELECT {did}, {literal(item.table)}, r._row, split_part(r._error, ':', 1),
               split_part(r._error, ':', 2),
               CASE WHEN r._cross THEN [r._error] ELSE {validator.all_errors_sql()} END,
               to_json(struct_pack({original})), now()
        FROM _rejected r JOIN _stage s ON s._row = r._row
        JOIN (SELECT * FROM ({source}) WHERE _row IN (SELECT _row FROM _rejected)) d
          ON d._row = r._row"""
    )
    if file.arrow is not None:
        con.unregister(view)
    rows_in, accepted = _counts(con, item, delivery.delivery_id)
    rules = dict(
        con.execute(
            "SELECT rule, count(*) FROM quarantine WHERE delivery_id = ? AND table_name = ? "
            "GROUP BY rule ORDER BY rule",
            [delivery.delivery_id, item.table],
        ).fetchall()
    )
    quarantined = sum(rules.values())
    if rows_in != accepted + quarantined:  # the invariant; the transaction is rolled back
        raise AssertionError(
            f"{item.table}: {rows_in} rows in but {accepted} accepted + {quarantined} quarantined"
        )
    repairs = _repair_counts(con, validator.repaired_sql())
    con.execute(
        "INSERT INTO delivery_tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            delivery.delivery_id,
            item.table,
            item.source,
            file.path.name,
            file.sha256,
            rows_in,
            accepted,
            quarantined,
            json.dumps(repairs, ensure_ascii=False),
        ],
    )
    con.execute("DROP TABLE _stage; DROP TABLE _rejected")
    return TableOutcome(
        item.table, item.source, file.path.name, rows_in, accepted, quarantined, rules, repairs
    )


def _counts(con: duckdb.DuckDBPyConnection, item: CatalogItem, delivery_id: str) -> tuple[int, int]:
    rows_in = fetch_row(con, "SELECT count(*) FROM _stage")
    accepted = fetch_row(
        con, f"SELECT count(*) FROM main.{quote(item.table)} WHERE _delivery_id = ?", [delivery_id]
    )
    assert rows_in is not None
    assert accepted is not None
    return int(rows_in[0]), int(accepted[0])


def _repair_counts(con: duckdb.DuckDBPyConnection, repaired: dict[str, str]) -> dict[str, int]:
    if not repaired:
        return {}
    sums = ", ".join(f"count_if({sql})" for sql in repaired.values())
    row = fetch_row(con, f"SELECT {sums} FROM _stage s WHERE {_ACCEPTED}")
    assert row is not None
    return {name: int(n) for name, n in zip(repaired, row, strict=True) if n}


def ingest_delivery(
    directory: Path,
    warehouse: Path | str,
    *,
    catalog: Catalog | None = None,
    delivery_id: str | None = None,
    delivered_on: dt.date | None = None,
    on_table: Callable[[TableOutcome], None] | None = None,
) -> DeliveryOutcome:
    """Validate a delivery against the catalog and load it into the warehouse atomically.

    Parameters
    ----------
    directory
        The delivery folder.
    warehouse
        Path of the DuckDB warehouse file (created if absent), or ``":memory:"``.
    catalog
        The credit information catalog; the packaged one by default.
    delivery_id, delivered_on
        Override ``delivery.json``. Without either, the id is derived from the file
        contents and the delivery date is today.
    on_table
        Called after each table with its outcome (for progress display).
    """
    catalog = catalog or load_catalog()
    delivery = read_delivery(
        Path(directory), catalog, delivery_id=delivery_id, delivered_on=delivered_on
    )
    area_codes = load_area_codes()
    con = connect(warehouse)
    try:
        ensure_schema(con, catalog)
        previous = delivery_ingested(con, delivery.delivery_id)
        if previous is not None:
            if previous != delivery.fingerprint:
                raise DeliveryConflictError(
                    "delivery_id",
                    "conflict",
                    f"{delivery.delivery_id!r} was ingested before with different contents",
                )
            logger.info("delivery %s already ingested; nothing to do", delivery.delivery_id)
            return _recorded_outcome(con, delivery)
        outcomes: dict[str, TableOutcome] = {}
        con.execute("BEGIN TRANSACTION")
        try:
            for file in delivery.files:
                outcome = _ingest_table(
                    con, file, catalog.item(file.table), delivery, catalog, area_codes
                )
                outcomes[file.table] = outcome
                logger.info(
                    "%s: %d rows in, %d accepted, %d quarantined",
                    file.table,
                    outcome.rows_in,
                    outcome.accepted,
                    outcome.quarantined,
                )
                if on_table is not None:
                    on_table(outcome)
            con.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, now(), ?, ?, ?)",
                [
                    delivery.delivery_id,
                    delivery.fingerprint,
                    delivery.delivered_on,
                    catalog.version,
                    sum(o.rows_in for o in outcomes.values()),
                    sum(o.accepted for o in outcomes.values()),
                    sum(o.quarantined for o in outcomes.values()),
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return DeliveryOutcome(delivery.delivery_id, "ingested", delivery.delivered_on, outcomes)
    finally:
        con.close()


def _recorded_outcome(con: duckdb.DuckDBPyConnection, delivery: Delivery) -> DeliveryOutcome:
    """The outcome of an already-ingested delivery, read back from the ledger."""
    rows = con.execute(
        "SELECT table_name, department, file_name, rows_in, accepted, quarantined, repaired "
        "FROM delivery_tables WHERE delivery_id = ?",
        [delivery.delivery_id],
    ).fetchall()
    tables = {}
    for table, department, file_name, rows_in, accepted, quarantined, repaired in rows:
        rules = dict(
            con.execute(
                "SELECT rule, count(*) FROM quarantine WHERE delivery_id = ? AND table_name = ? "
                "GROUP BY rule ORDER BY rule",
                [delivery.delivery_id, table],
            ).fetchall()
        )
        tables[table] = TableOutcome(
            table,
            department,
            file_name,
            rows_in,
            accepted,
            quarantined,
            rules,
            json.loads(repaired),
        )
    return DeliveryOutcome(delivery.delivery_id, "already_ingested", delivery.delivered_on, tables)
