"""Benchmark: build the three-in-one view at Wenzhou scale on DuckDB.

Builds the view as of ``--as-of`` from a warehouse (by default: generate 1,100,000 entities,
ingest them into a temporary warehouse), in a child process so that its peak RSS is its own,
and compares the build time with one full DuckDB scan of the same input (every column of
every row hashed): of the warehouse tables, and of the same tables as Parquet files.

    .venv/bin/python bench/features.py [--warehouse PATH] [--entities 1100000] [--engine spark]

Targets (issue 4): under 2 minutes and 8 GiB on 2 cores; build / full scan under 5.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
# run as a script, this file's folder comes first on sys.path and its name would shadow the
# `features` package: put the project root first instead
sys.path[0] = str(ROOT)

_CHILD = """
import datetime as dt, json, resource, sys, tempfile, time
from pathlib import Path
from features.view import build_view
from features.view.engine import duckdb_tables, spark_tables
warehouse, as_of, engine = Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
if engine == "duckdb":
    with duckdb_tables(warehouse) as (_, tables):
        result = build_view(tables, as_of)
else:
    with tempfile.TemporaryDirectory() as tmp, spark_tables(warehouse, Path(tmp)) as (_, t):
        result = build_view(t, as_of, engine="spark")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "rows": result.table.num_rows,
                  "features": len(result.metadata["features"])}))
"""


def full_scan_seconds(warehouse: Path) -> tuple[float, int]:
    """Seconds to read every column of every table the view reads, once; and rows read."""
    from features.catalog import load_catalog  # noqa: PLC0415
    from features.view.engine import EXTRA_TABLES  # noqa: PLC0415

    con = duckdb.connect(str(warehouse), read_only=True)
    rows = 0
    start = time.perf_counter()
    for table in (*load_catalog().tables, *EXTRA_TABLES):
        found = con.execute(f'SELECT count(*), max(hash(t)) FROM "{table}" t').fetchall()
        rows += int(found[0][0])
    seconds = time.perf_counter() - start
    con.close()
    return seconds, rows


def parquet_scan_seconds(warehouse: Path, folder: Path) -> float:
    """Seconds to read every column of the same tables exported as Parquet files, once."""
    from features.view.engine import export_parquet  # noqa: PLC0415

    paths = export_parquet(warehouse, folder)
    con = duckdb.connect()
    start = time.perf_counter()
    for path in paths.values():
        con.execute(f"SELECT count(*), max(hash(t)) FROM read_parquet('{path}') t").fetchall()
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, help="use this warehouse instead of generating")
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--as-of", default="2019-06-30")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wzcredit-bench-") as tmp:
        warehouse = args.warehouse
        if warehouse is None:
            warehouse = Path(tmp) / "warehouse.duckdb"
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "wzcredit.cli", "generate", "--entities",
                 str(args.entities), "--out", str(Path(tmp) / "delivery")],
                cwd=ROOT, check=True,
            )  # fmt: skip
            subprocess.run(
                [sys.executable, "-m", "wzcredit.cli", "ingest", str(Path(tmp) / "delivery"),
                 "--warehouse", str(warehouse), "--json"],
                cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            print(f"generated and ingested in {time.perf_counter() - started:.0f} s")
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(warehouse), args.as_of, args.engine],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        report = json.loads(result.stdout.strip().splitlines()[-1])
        scan, rows = full_scan_seconds(warehouse)
        files_scan = parquet_scan_seconds(warehouse, Path(tmp) / "parquet")
    print(f"engine              {args.engine}")
    print(f"input rows          {rows:,} (all warehouse tables the view reads)")
    print(f"view                {report['rows']:,} entities × {report['features']} features")
    print(f"build wall time     {report['seconds']:.1f} s   (target < 120 s)")
    print(f"peak memory (RSS)   {report['peak_bytes'] / 2**30:.2f} GiB (target < 8 GiB)")
    print(f"full scan, tables   {scan:.1f} s (warehouse tables, in DuckDB's own format)")
    print(f"full scan, files    {files_scan:.1f} s (the same tables as Parquet files)")
    print(
        f"build / scan        {report['seconds'] / scan:.1f} against the tables, "
        f"{report['seconds'] / files_scan:.1f} against the files   (target < 5)"
    )


if __name__ == "__main__":
    main()
