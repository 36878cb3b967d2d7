"""The warehouse: a DuckDB file holding accepted rows, the quarantine and the delivery ledger.

Layout
------
- one table per catalog item, with the catalog's typed columns, the lineage columns
  ``_delivery_id`` and ``_source_row`` (1-based data row in the delivered file), and a
  ``<column>_key`` (BIGINT) beside every identifier column (USCC, resident ID, subject ID);
- ``subject_keys``: the surrogate key of every identifier ever ingested, one key space for
  USCCs and resident IDs, so that an entity's own records (``uscc_key``) and those filed
  under its code elsewhere (``subject_id_key``, ``borrower_id_key`` …) carry the same
  integer. Keys are assigned at ingest, in identifier order within a delivery, and never
  change; joins and aggregates on them (the view's) hash an integer instead of an 18-character
  string. A warehouse written before keys existed gets them on its next write connection
  (`ensure_schema`);
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
#: catalog column types that identify a subject (a market entity or a person)
SUBJECT_TYPES = frozenset({"uscc", "resident_id", "subject_id"})
KEYS_TABLE = "subject_keys"

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
    # no index: `assign_keys` adds only identifiers not yet there, inside the one writer's
    # transaction, so both columns stay unique (an index cost 0.7 s per 1M new identifiers)
    f"""CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (
        subject_id VARCHAR NOT NULL,
        subject_key BIGINT NOT NULL)""",
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


def key_column(column: str) -> str:
    """The surrogate-key column beside identifier column ``column``."""
    return f"{column}_key"


def key_columns(item: CatalogItem) -> dict[str, str]:
    """``identifier column → its key column`` for every identifier column of ``item``."""
    return {n: key_column(n) for n, s in item.columns.items() if s.type in SUBJECT_TYPES}


def warehouse_columns(item: CatalogItem) -> list[tuple[str, str]]:
    """``(name, type)`` of the warehouse table of ``item``, in order.

    The catalog's columns, the lineage, then the keys (last, so that a warehouse from
    before keys gets the same layout by ``ALTER TABLE … ADD COLUMN``).
    """
    columns = [(n, WAREHOUSE_TYPES[s.type]) for n, s in item.columns.items()]
    columns += list(LINEAGE_COLUMNS.items())
    clash = set(key_columns(item).values()) & {n for n, _ in columns}
    if clash:
        raise CatalogError(item.table, "key_column", f"columns named like keys: {sorted(clash)}")
    return columns + [(k, "BIGINT") for k in key_columns(item).values()]


def table_ddl(item: CatalogItem) -> str:
    """``CREATE TABLE`` for one catalog item in the warehouse."""
    lineage = set(LINEAGE_COLUMNS)
    columns = [
        f"{quote(n)} {t}{' NOT NULL' if n in lineage else ''}" for n, t in warehouse_columns(item)
    ]
    return f"CREATE TABLE IF NOT EXISTS {quote(item.table)} ({', '.join(columns)})"


def assign_keys(con: duckdb.DuckDBPyConnection, identifiers: list[str]) -> int:
    """Give every identifier selected by the queries ``identifiers`` a key; the new ones' count.

    Each query selects one column of identifiers (NULLs and known ones are skipped). New
    identifiers are numbered after the largest key, in identifier order, so that the same
    deliveries in the same order give the same keys.
    """
    if not identifiers:
        return 0
    union = " UNION ".join(f"SELECT * FROM ({q})" for q in identifiers)
    before = fetch_row(con, f"SELECT count(*) FROM {KEYS_TABLE}")
    con.execute(
        f"""INSERT INTO {KEYS_TABLE}
        SELECT id, (SELECT coalesce(max(subject_key), 0) FROM {KEYS_TABLE})
                   + row_number() OVER (ORDER BY id)
        FROM ({union}) new (id)
        WHERE id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {KEYS_TABLE} k WHERE k.subject_id = new.id)"""
    )
    after = fetch_row(con, f"SELECT count(*) FROM {KEYS_TABLE}")
    return int(after[0]) - int(before[0])  # type: ignore[index]


def keyed_select(item: CatalogItem, rows: str) -> str:
    """``SELECT`` of the rows of query ``rows`` (the table's columns) with their keys.

    The keys must have been assigned (`assign_keys`); every identifier then finds its key.
    Rows keep the order they were delivered in (``_source_row``): the lookup would otherwise
    store them in whatever order its hash join produced them.
    """
    keys = key_columns(item)
    alias = {c: quote(f"_k_{c}") for c in keys}
    joins = "".join(
        f" LEFT JOIN {KEYS_TABLE} {alias[c]} ON {alias[c]}.subject_id = r.{quote(c)}" for c in keys
    )
    values = [f"r.{quote(n)}" for n in [*item.columns, *LINEAGE_COLUMNS]]
    values += [f"{alias[c]}.subject_key" for c in keys]
    return f"SELECT {', '.join(values)} FROM ({rows}) r{joins} ORDER BY r._source_row"


def _add_keys(con: duckdb.DuckDBPyConnection, item: CatalogItem) -> None:
    """Add and fill the key columns of a table written before keys existed."""
    keys = key_columns(item)
    table = quote(item.table)
    assign_keys(con, [f"SELECT DISTINCT {quote(c)} FROM {table}" for c in keys])
    for column, key in keys.items():
        con.execute(f"ALTER TABLE {table} ADD COLUMN {quote(key)} BIGINT")
        con.execute(
            f"UPDATE {table} SET {quote(key)} = k.subject_key FROM {KEYS_TABLE} k "
            f"WHERE k.subject_id = {table}.{quote(column)}"
        )
    logger.info("%s: added keys %s", item.table, ", ".join(keys.values()))


def ensure_schema(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Create missing tables, add missing keys; refuse tables that disagree with the catalog."""
    for ddl in _LEDGER_DDL:
        con.execute(ddl)
    layout = _layout(con)
    for item in catalog.items:
        if item.table not in layout:
            con.execute(table_ddl(item))
            continue
        want = warehouse_columns(item)
        have = layout[item.table]
        if have == want:
            continue
        if key_columns(item) and have == want[: -len(key_columns(item))]:
            con.execute("BEGIN TRANSACTION")
            try:
                _add_keys(con, item)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            continue
        raise CatalogError(
            item.table,
            "warehouse_schema",
            f"the warehouse table has columns {have}, the catalog expects {want}; "
            "migrate the warehouse before ingesting with this catalog",
        )


def _layout(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """``table → [(column, type), …]`` of every table in the warehouse, in one query."""
    layout: dict[str, list[tuple[str, str]]] = {}
    for table, name, dtype in con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'main' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall():
        layout.setdefault(table, []).append((name, dtype))
    return layout


def keyed(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> bool:
    """True if every table of ``catalog`` exists with its key columns (read-only check)."""
    layout = _layout(con)
    return all(
        [n for n, _ in layout.get(item.table, [])] == [n for n, _ in warehouse_columns(item)]
        for item in catalog.items
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
