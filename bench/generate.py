"""Benchmark the synthetic Wenzhou generator at city scale.

Runs ``features.synthetic.generate`` for ``--entities`` (default 1,100,000, about Wenzhou's
registered market entities) into a temporary folder and prints the wall time, the peak
resident memory (``resource.getrusage``), rows and faults. Exits with status 1 when the run
misses the budget (default: 10 minutes and 12 GiB, the target on a 2-core machine).

Usage::

    .venv/bin/python bench/generate.py                  # 1.1 million entities, Parquet
    .venv/bin/python bench/generate.py --entities 200000 --format csv --keep bench/out
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

# run as a script, this file's folder comes first on sys.path, where bench/features.py would
# shadow the `features` package: put the project root first instead
sys.path[0] = str(Path(__file__).resolve().parents[1])

from features.synthetic import GeneratorConfig, generate  # noqa: E402


def _peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (``ru_maxrss`` is KiB on Linux)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform != "darwin" else 1 / 1024  # bytes on macOS
    return kib * scale / 2**20


def _folder_size_gib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**30


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--keep", type=Path, help="write here and keep the files")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--max-gib", type=float, default=12.0)
    parser.add_argument("--verbose", action="store_true", help="log each table")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
    )

    config = GeneratorConfig(entities=args.entities, seed=args.seed, file_format=args.format)
    out = args.keep or Path(tempfile.mkdtemp(prefix="wzcredit-generate-"))
    try:
        started = time.perf_counter()
        result = generate(config, out)
        seconds = time.perf_counter() - started
        peak = _peak_rss_gib()
        size = _folder_size_gib(out)
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)

    rows = sum(result.row_counts.values())
    print(f"entities      {args.entities:,}")
    print(f"format        {args.format}")
    print(f"rows          {rows:,} in {len(result.row_counts)} tables")
    for table, count in sorted(result.row_counts.items(), key=lambda item: -item[1]):
        print(f"  {table:<26}{count:>14,}")
    print(f"faults        {result.fault_count:,}")
    print(f"output        {size:.2f} GiB")
    print(f"wall time     {seconds:.1f} s   (budget {args.max_seconds:.0f} s)")
    print(f"peak RSS      {peak:.2f} GiB (budget {args.max_gib:.1f} GiB)")
    within = seconds <= args.max_seconds and peak <= args.max_gib
    print("result        " + ("within budget" if within else "OVER BUDGET"))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
