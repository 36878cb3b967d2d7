"""Engines that run the view's Ibis expressions: DuckDB (default) and Apache Spark.

The view is one set of Ibis expressions over the warehouse tables; an engine only decides
where those tables live. DuckDB reads the warehouse file directly. Spark reads the same
tables exported as Parquet (at province scale they would live on HDFS or object storage
already), in ``local[*]`` here and on a cluster in production.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import duckdb
import ibis
import ibis.expr.types as ir

from features.catalog import Catalog, load_catalog
from features.validation import quote
from features.warehouse import connect, ensure_schema, keyed

logger = logging.getLogger(__name__)

Engine = Literal["duckdb", "spark"]
#: warehouse tables the view reads besides the catalog items
EXTRA_TABLES = ("deliveries",)


@functools.cache
def packaged_catalog() -> Catalog:
    """The packaged catalog, parsed once per process (it is frozen)."""
    return load_catalog()


def _table_names(catalog: Catalog) -> tuple[str, ...]:
    return (*catalog.tables, *EXTRA_TABLES)


def _prepare(warehouse: Path, catalog: Catalog) -> None:
    """Make sure every table the view reads exists (empty for an undelivered item), keyed.

    Checked read-only first, so that a complete warehouse is never opened for writing (and a
    reader never contends for the write lock); only a warehouse missing tables or the
    surrogate keys (one written before them) is upgraded.
    """
    if warehouse.exists():
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            present = {
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
                ).fetchall()
            }
            if set(_table_names(catalog)) <= present and keyed(con, catalog):
                return
        finally:
            con.close()
    con = connect(warehouse)
    try:
        ensure_schema(con, catalog)
    finally:
        con.close()


@contextmanager
def duckdb_tables(
    warehouse: Path, catalog: Catalog | None = None
) -> Iterator[tuple[Any, Mapping[str, ir.Table]]]:
    """Open the warehouse read-only with Ibis; yields ``(backend, tables)``."""
    catalog = catalog or packaged_catalog()
    _prepare(warehouse, catalog)
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    try:
        yield backend, {name: backend.table(name) for name in _table_names(catalog)}
    finally:
        backend.disconnect()


def export_parquet(
    warehouse: Path, folder: Path, catalog: Catalog | None = None
) -> dict[str, Path]:
    """Export every warehouse table the view reads to ``folder/<table>.parquet``."""
    catalog = catalog or packaged_catalog()
    _prepare(warehouse, catalog)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for name in _table_names(catalog):
            path = folder / f"{name}.parquet"
            con.execute(f"COPY {quote(name)} TO '{path}' (FORMAT parquet)")
            paths[name] = path
    finally:
        con.close()
    return paths


def spark_session(app_name: str = "wzcredit") -> Any:
    """A local Spark session (``local[*]``, UTC, no UI) for this machine or CI.

    Python workers (``mapInPandas``, UDFs) run this interpreter, with this project's packages.
    """
    from pyspark.sql import SparkSession  # noqa: PLC0415 - optional extra

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[*]")
        .appName(app_name)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )


@contextmanager
def spark_tables(
    warehouse: Path, folder: Path, catalog: Catalog | None = None, session: Any = None
) -> Iterator[tuple[Any, Mapping[str, ir.Table]]]:
    """Export the warehouse to Parquet in ``folder`` and open it with Ibis on Spark."""
    paths = export_parquet(warehouse, folder, catalog)
    backend = ibis.pyspark.connect(session or spark_session())
    tables = {
        name: backend.read_parquet(str(path), table_name=f"wz_{name}")
        for name, path in paths.items()
    }
    yield backend, tables
