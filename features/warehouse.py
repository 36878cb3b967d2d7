"""The warehouse: a DuckDB file holding accepted rows, the quarantine and the delivery ledger.

Layout
------
- one table per catalog item, with the catalog's typed columns plus the lineage columns
  ``_delivery_id`` and ``_source_row`` (1-based data row in the delivered file);
- ``quarantine``: every refused row with its delivery, table, row number, the first failed
  ``field`` and ``rule``, every violation, and the original row as delivered (JSON text);
- ``deliveries`` and ``delivery_tables``: the ledger of ingested deliveries and per-table
  outcomes, which makes re-ingesting a delivery a no-op.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.func import FunctionNullHandling, PythonUDFType

from features.catalog import Catalog, CatalogItem
from features.errors import CatalogError
from features.identifiers import resident_id_errors, uscc_errors
from features.validation import WAREHOUSE_TYPES, quote

logger = logging.getLogger(__name__)

LINEAGE_COLUMNS = {"_delivery_id": "VARCHAR", "_source_row": "BIGINT"}

_LEDGER_DDL = (
    """CREATE TABLE IF NOT EXISTS deliveries (
        delivery_id VARCHAR PRIMARY KEY,
        fingerprint VARCHAR NOT NULL,
        delivered_on DATE NOT NULL,
        catalog_version VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL,
        rows_in BIGINT NOT NULL,
        accepted BIGINT NOT NULL,
        quarantined BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS delivery_tables (
        delivery_id VARCHAR NOT NULL,
        table_name VARCHAR NOT NULL,
        department VARCHAR NOT NULL,
        file_name VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL,
        rows_in BIGINT NOT NULL,
        accepted BIGINT NOT NULL,
        quarantined BIGINT NOT NULL,
        repaired JSON NOT NULL,
        PRIMARY KEY (delivery_id, table_name))""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        delivery_id VARCHAR NOT NULL,
        table_name VARCHAR NOT NULL,
        source_row BIGINT NOT NULL,
        field VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,
        violations VARCHAR[] NOT NULL,
        original_row JSON NOT NULL,
        quarantined_at TIMESTAMP NOT NULL)""",
)


def _subject_id_errors(values: pa.Array) -> pa.Array:
    """A subject is a USCC or a resident ID: valid if either check passes.

    When both fail, the resident-ID rule is reported for 17 digits + digit/X, the USCC rule
    otherwise, so that the message names the check the sender most likely meant.
    """
    as_uscc = uscc_errors(values)
    as_id = resident_id_errors(values)
    looks_like_id = pc.match_substring_regex(values, r"^[0-9]{17}[0-9X]$")
    either_valid = pc.or_(pc.is_null(as_uscc), pc.is_null(as_id))
    chosen = pc.if_else(looks_like_id, as_id, as_uscc)
    return pc.if_else(either_valid, pa.scalar(None, pa.string()), chosen)


def fetch_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, consuming the whole result.

    DuckDB 2 keeps a result open after ``fetchone()``, which blocks ``register()`` and other
    work on the connection; every single-row read goes through here instead.
    """
    rows = con.execute(sql, params or []).fetchall()
    return tuple(rows[0]) if rows else None


def _nfkc(values: pa.Array) -> pa.Array:
    """Unicode NFKC: full-width letters and digits become ASCII, wide spaces plain spaces."""
    return pc.utf8_normalize(values, "NFKC")


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating the file and parent folder if needed) with our UDFs.

    ``path`` may be ``":memory:"`` for tests.
    """
    if str(path) != ":memory:" and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    varchar = duckdb.sqltype("VARCHAR")
    for name, fn in (
        ("wz_uscc_error", uscc_errors),
        ("wz_resident_id_error", resident_id_errors),
        ("wz_subject_id_error", _subject_id_errors),
        ("wz_fold", _nfkc),
    ):
        con.create_function(
            name,
            fn,
            [varchar],
            varchar,
            type=PythonUDFType.ARROW,
            null_handling=FunctionNullHandling.SPECIAL,
        )
    return con


def table_ddl(item: CatalogItem) -> str:
    """``CREATE TABLE`` for one catalog item in the warehouse."""
    columns = [f"{quote(n)} {WAREHOUSE_TYPES[s.type]}" for n, s in item.columns.items()]
    columns += [f"{quote(n)} {t} NOT NULL" for n, t in LINEAGE_COLUMNS.items()]
    return f"CREATE TABLE IF NOT EXISTS {quote(item.table)} ({', '.join(columns)})"


def ensure_schema(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Create missing tables; refuse a warehouse whose tables disagree with the catalog."""
    for ddl in _LEDGER_DDL:
        con.execute(ddl)
    existing = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    for item in catalog.items:
        if item.table not in existing:
            con.execute(table_ddl(item))
            continue
        have = [
            (name, dtype)
            for name, dtype in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [item.table],
            ).fetchall()
        ]
        want = [(n, WAREHOUSE_TYPES[s.type]) for n, s in item.columns.items()]
        want += list(LINEAGE_COLUMNS.items())
        if have != want:
            raise CatalogError(
                item.table,
                "warehouse_schema",
                f"the warehouse table has columns {have}, the catalog expects {want}; "
                "migrate the warehouse before ingesting with this catalog",
            )


def delivery_ingested(con: duckdb.DuckDBPyConnection, delivery_id: str) -> str | None:
    """The fingerprint recorded for ``delivery_id``, or None if it was never ingested."""
    row = fetch_row(con, "SELECT fingerprint FROM deliveries WHERE delivery_id = ?", [delivery_id])
    return None if row is None else str(row[0])


def row_counts(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> dict[str, int]:
    """Rows per warehouse table, plus ``quarantine``."""
    counts = {}
    for table in [*catalog.tables, "quarantine"]:
        result = fetch_row(con, f"SELECT count(*) FROM {quote(table)}")
        counts[table] = int(result[0]) if result else 0
    return counts
