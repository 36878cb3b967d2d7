"""Benchmark: build the three-in-one view at Wenzhou scale on DuckDB.

Builds the view as of ``--as-of`` from a warehouse (by default: generate 1,100,000 entities,
ingest them into a temporary warehouse), in a child process so that its peak RSS is its own,
and compares the build time with one full DuckDB scan of the same input (every column of
every row hashed): of the warehouse tables, and of the same tables as Parquet files.

The build is timed from open tables to the checked view in memory, as the scans are timed
from an open connection. Opening the tables (importing the engine's Ibis backend and what
its first result imports, pandas among them, connecting, and for Spark exporting Parquet
and starting the session) is a fixed cost per process, reported on its own line and in a
second ratio. ``--repeat`` runs build and scans several times, in turn, and reports the
medians: on a shared 2-core machine single timings are noisy (each run prints the load
average).

    .venv/bin/python bench/features.py [--warehouse PATH] [--entities 1100000] [--engine spark]
                                       [--repeat 3] [--profile]

``--profile`` (DuckDB) also runs the view's query once under DuckDB's profiler and prints
where its CPU time goes: the Python side (building and compiling the Ibis expression), then
the operators of each part joined onto the population (by the warehouse tables it reads),
the join chain itself, the sort of the population (on DuckDB the finished view is not sorted:
`features.view.build.view_query`), and the projection and result conversion at the end.

Targets (issue 4): under 2 minutes and 8 GiB on 2 cores; build / full scan under 5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
from bench.features import cpu_seconds, cpu_since
warehouse, as_of, engine = Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), sys.argv[3]
opening = time.perf_counter()
def build(tables, **kwargs):
    tables["lpr"].limit(1).to_pyarrow()  # one-time imports of the result path (pandas ...)
    before, start = cpu_seconds(), time.perf_counter()
    result = build_view(tables, as_of, **kwargs)
    end, cpu = time.perf_counter(), cpu_since(before)
    return result, start, end, cpu
if engine == "duckdb":
    with duckdb_tables(warehouse) as (_, tables):
        result, start, end, cpu = build(tables)
else:
    with tempfile.TemporaryDirectory() as tmp, spark_tables(warehouse, Path(tmp)) as (_, t):
        result, start, end, cpu = build(t, engine="spark")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": end - start, "open_seconds": start - opening, "peak_bytes": peak,
                  "rows": result.table.num_rows, "features": len(result.metadata["features"]),
                  **{f"build_{key}": value for key, value in cpu.items()}}))
"""


def cpu_seconds() -> tuple[float, float, int]:
    """This process's user and system CPU seconds and minor page faults so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def cpu_since(before: tuple[float, float, int]) -> dict[str, float]:
    """``user``, ``system`` CPU seconds and page ``faults`` since `cpu_seconds` gave ``before``."""
    now = cpu_seconds()
    return {key: n - b for key, n, b in zip(("user", "system", "faults"), now, before, strict=True)}


def full_scan_seconds(warehouse: Path) -> tuple[float, int, dict[str, float]]:
    """Seconds to read every column of every table the view reads, once; rows read; CPU.

    CPU is the scan's user and system seconds and minor page faults, as for the build.
    """
    from features.catalog import load_catalog  # noqa: PLC0415
    from features.view.engine import EXTRA_TABLES  # noqa: PLC0415

    con = duckdb.connect(str(warehouse), read_only=True)
    rows = 0
    before, start = cpu_seconds(), time.perf_counter()
    for table in (*load_catalog().tables, *EXTRA_TABLES):
        found = con.execute(f'SELECT count(*), max(hash(t)) FROM "{table}" t').fetchall()
        rows += int(found[0][0])
    seconds, cpu = time.perf_counter() - start, cpu_since(before)
    con.close()
    return seconds, rows, cpu


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


_PROFILE = """
import datetime as dt, json, sys, time
from pathlib import Path
import ibis
from features.view.build import view_query
from features.view.context import ViewContext, load_policy
from features.view.engine import duckdb_tables
warehouse, as_of, out = Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]), sys.argv[3]
with duckdb_tables(warehouse) as (backend, tables):
    tables["lpr"].limit(1).to_pyarrow()
    start = time.perf_counter()
    expr = view_query(ViewContext(tables, as_of, load_policy()))
    built = time.perf_counter()
    sql = str(ibis.to_sql(expr, dialect="duckdb"))
    compiled = time.perf_counter()
    con = backend.con
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{out}'")
    con.sql(sql).to_arrow_table()
    con.execute("PRAGMA disable_profiling")
print(json.dumps({"expression": built - start, "compile": compiled - built}))
"""


def _inclusive(node: dict[str, Any]) -> float:
    return float(node.get("timing", 0.0)) + sum(_inclusive(c) for c in node.get("children", []))


def _tables(node: dict[str, Any]) -> set[str]:
    found = {str(node["extra_info"].get("Table", "")).rsplit(".", 1)[-1]}
    for child in node.get("children", []):
        found |= _tables(child)
    return found - {""}


def profile_breakdown(plan: dict[str, Any]) -> tuple[dict[str, float], float]:
    """CPU seconds by part of the view query, and the query's total.

    The population's left-join chain is the spine: each join's build side is one part,
    labelled by the warehouse tables it reads; everything else on the spine (the joins
    themselves, the final projection, the population's sort, the result) is reported by operator.
    """
    costs: dict[str, float] = {}

    def add(label: str, seconds: float) -> None:
        costs[label] = costs.get(label, 0.0) + seconds

    def spine(node: dict[str, Any]) -> None:
        children = node.get("children", [])
        name = str(node["name"])
        if name == "HASH_JOIN" and len(children) == 2:
            add("join chain (probe side)", float(node.get("timing", 0.0)))
            part = children[1]
            add("part: " + ", ".join(sorted(_tables(part))), _inclusive(part))
            spine(children[0])
            return
        if name in ("ORDER_BY", "RESULT_COLLECTOR", "PROJECTION", "SEQ_SCAN"):
            label = "population scan" if name == "SEQ_SCAN" else name.lower().replace("_", " ")
            add(label, float(node.get("timing", 0.0)))
        else:
            add("other", float(node.get("timing", 0.0)))
        if name == "CTE" and len(children) == 2:  # the CTE's body is a part of its own
            add("shared subquery: " + ", ".join(sorted(_tables(children[0]))),
                _inclusive(children[0]))  # fmt: skip
            spine(children[1])
            return
        for child in children:
            spine(child)

    for top in plan["operator"]:
        spine(top)
    return costs, float(plan["query"]["cpu_time"])


def print_profile(warehouse: Path, as_of: str, folder: Path) -> None:
    """Run the view's query once under DuckDB's profiler and print where the time goes."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "profile.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROFILE, str(warehouse), as_of, str(out)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    python = json.loads(result.stdout.strip().splitlines()[-1])
    costs, total = profile_breakdown(json.loads(out.read_text()))
    print("profile (one build, DuckDB operator CPU seconds, both threads summed):")
    print(f"  python: expression {python['expression']:.2f} s, compile {python['compile']:.2f} s"
          " (wall, one thread)")  # fmt: skip
    for label, seconds in sorted(costs.items(), key=lambda item: -item[1]):
        if seconds >= 0.01:
            print(f"  {seconds:6.2f} s  {100 * seconds / total:4.1f} %  {label}")
    print(f"  {total:6.2f} s  total CPU")


def run_once(warehouse: Path, as_of: str, engine: str, folder: Path) -> dict[str, float]:
    """Build the view in a child process, then scan its input: one run's figures."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(warehouse), as_of, engine],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    run: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    run["scan"], run["input_rows"], cpu = full_scan_seconds(warehouse)
    run.update({f"scan_{key}": value for key, value in cpu.items()})
    run["files_scan"] = parquet_scan_seconds(warehouse, folder)
    run["load"] = os.getloadavg()[0]
    return run


def median(runs: list[dict[str, float]], key: str, per: str | None = None) -> float:
    """Median over runs of ``key``, or of each run's own ratio ``key / per``."""
    return statistics.median(run[key] / run[per] if per else run[key] for run in runs)


def print_report(runs: list[dict[str, float]], engine: str) -> None:
    """The medians of the runs, with the targets."""
    with_opening = statistics.median(
        (run["seconds"] + run["open_seconds"]) / run["scan"] for run in runs
    )
    print(f"engine              {engine}")
    print(f"input rows          {runs[0]['input_rows']:,} (all warehouse tables the view reads)")
    print(f"view                {runs[0]['rows']:,} entities × {runs[0]['features']} features")
    print(f"build wall time     {median(runs, 'seconds'):.1f} s   (target < 120 s;"
          f" median of {len(runs)})")  # fmt: skip
    print(f"opening the tables  {median(runs, 'open_seconds'):.1f} s (once per process, not in"
          " the build time, as connecting is not in the scans)")  # fmt: skip
    print(f"peak memory (RSS)   {max(run['peak_bytes'] for run in runs) / 2**30:.2f} GiB"
          " (target < 8 GiB)")  # fmt: skip
    print(f"full scan, tables   {median(runs, 'scan'):.1f} s (warehouse tables, in DuckDB's own"
          " format)")  # fmt: skip
    print(f"full scan, files    {median(runs, 'files_scan'):.1f} s (the same tables as Parquet"
          " files)")  # fmt: skip
    print(
        f"build / scan        {median(runs, 'seconds', 'scan'):.1f} against the tables, "
        f"{median(runs, 'seconds', 'files_scan'):.1f} against the files   (target < 5)"
    )
    print(f"  with opening      {with_opening:.1f} against the tables")
    print(f"CPU, build          user {median(runs, 'build_user'):.1f} s + system"
          f" {median(runs, 'build_system'):.1f} s, {median(runs, 'build_faults'):,.0f} page faults"
          " (first touch of memory: the system time)")  # fmt: skip
    print(
        f"CPU, table scan     user {median(runs, 'scan_user'):.1f} s + system"
        f" {median(runs, 'scan_system'):.1f} s, {median(runs, 'scan_faults'):,.0f} page faults"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", type=Path, help="use this warehouse instead of generating")
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--as-of", default="2019-06-30")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--repeat", type=int, default=1, help="runs of build and scans, in turn")
    parser.add_argument("--profile", action="store_true",
                        help="also print where the build's CPU time goes (DuckDB)")  # fmt: skip
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
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
        runs = []
        for number in range(1, args.repeat + 1):
            run = run_once(warehouse, args.as_of, args.engine, Path(tmp) / "parquet")
            runs.append(run)
            if args.repeat > 1:
                print(
                    f"run {number}: build {run['seconds']:.1f} s (+ {run['open_seconds']:.1f} s"
                    f" opening), scans {run['scan']:.2f} s / {run['files_scan']:.2f} s, ratio"
                    f" {run['seconds'] / run['scan']:.1f}, load average {run['load']:.1f}"
                )
        print_report(runs, args.engine)
        if args.profile and args.engine == "duckdb":
            print_profile(warehouse, args.as_of, Path(tmp) / "profile")


if __name__ == "__main__":
    main()
