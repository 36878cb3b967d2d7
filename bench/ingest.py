"""Benchmark: validated ingest throughput and peak memory for a multi-million-row delivery.

Builds a delivery of ``--rows`` rows (default 5,000,000) over four related tables — persons,
entities, PBOC accounts and their monthly statuses — with about 1% faulty rows (bad check
characters, unknown codes, negative amounts, orphans, duplicates), then ingests it into a
fresh warehouse in a child process and prints rows/s and that process's peak RSS.

    .venv/bin/python bench/ingest.py [--rows 5000000] [--format parquet|csv]

Target (issue 2): at least 500,000 validated rows per second on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.catalog import load_catalog  # noqa: E402
from features.identifiers import USCC_ALPHABET, make_resident_ids, make_usccs  # noqa: E402

FAULT_RATE = 0.01


def _write(directory: Path, table: str, columns: dict[str, np.ndarray], fmt: str) -> int:
    order = load_catalog().item(table).column_names
    arrow = pa.table({c: pa.array(columns[c]) for c in order})
    if fmt == "csv":
        pacsv.write_csv(arrow, directory / f"{table}.csv")
    else:
        pq.write_table(arrow, directory / f"{table}.parquet", compression="zstd")
    return arrow.num_rows


def _corrupt(rng: np.random.Generator, values: np.ndarray, bad: object) -> np.ndarray:
    out = values.astype(object)
    hit = rng.random(len(out)) < FAULT_RATE / 4
    out[hit] = bad
    return out


def build_delivery(directory: Path, rows: int, fmt: str, seed: int = 0) -> dict[str, int]:
    """Write a delivery of about ``rows`` rows; returns rows per table."""
    rng = np.random.default_rng(seed)
    n_reg = max(rows // 10, 1_000)  # persons = entities = accounts; the rest is monthly data
    districts = np.array(["330302", "330303", "330304", "330381", "330382", "330324"])
    birth = np.datetime64("1950-01-01") + rng.integers(0, 50 * 365, n_reg).astype("timedelta64[D]")
    area = districts[rng.integers(0, len(districts), n_reg)]
    # unique by construction: the sequence number runs within each (area, birth date)
    resident_ids = make_resident_ids(area, birth, (np.arange(n_reg) // 7_000) % 1000)
    resident_ids, first = np.unique(resident_ids, return_index=True)
    area, birth = area[first], birth[first]
    n_reg = len(resident_ids)
    counts = {
        "persons": _write(
            directory,
            "persons",
            {
                "resident_id": resident_ids,
                "name": np.full(n_reg, "测试人员"),
                "birth_date": birth.astype(str),
                "household_id": np.char.add("H", np.arange(n_reg).astype(str)),
                "district": area,
                "town": np.full(n_reg, None),
                "village": np.full(n_reg, None),
            },
            fmt,
        )
    }
    alphabet = np.array(list(USCC_ALPHABET[:31]))
    body = np.char.add(
        "MA", np.array(["".join(r) for r in alphabet[rng.integers(0, 31, (n_reg, 6))]])
    )
    uscc = make_usccs(np.full(n_reg, "9"), np.full(n_reg, "1"), area, body)
    _, first = np.unique(uscc, return_index=True)  # random bodies may collide: keep one each
    keep = np.sort(first)
    uscc, area, reps = uscc[keep], area[keep], resident_ids[keep]
    n_ent = len(uscc)
    flip = rng.random(n_ent) < FAULT_RATE
    bad_uscc = uscc.astype(object)
    bad_uscc[flip] = [u[:-1] + ("0" if u[-1] != "0" else "1") for u in uscc[flip]]
    registered = np.datetime64("2000-01-01") + rng.integers(0, 7000, n_ent).astype("timedelta64[D]")
    counts["entities"] = _write(
        directory,
        "entities",
        {
            "uscc": bad_uscc,
            "name": np.full(n_ent, "测试企业有限公司"),
            "entity_type": np.full(n_ent, "企业"),
            "industry": _corrupt(rng, np.array(list("CFGHK"))[rng.integers(0, 5, n_ent)], "Z"),
            "district": area,
            "town": np.full(n_ent, None),
            "village": np.full(n_ent, None),
            "registered_on": registered.astype(str),
            "deregistered_on": np.full(n_ent, None),
            "registered_capital": np.round(rng.lognormal(13, 1.5, n_ent), 2),
            "employees": rng.integers(1, 500, n_ent),
            "legal_rep_id": reps,
            "is_small_micro": rng.random(n_ent) < 0.9,
            "is_agricultural": rng.random(n_ent) < 0.1,
            "is_young_entrepreneur": rng.random(n_ent) < 0.2,
        },
        fmt,
    )
    account_ids = np.char.add("ACC", np.arange(n_reg).astype(str))
    counts["pboc_accounts"] = _write(
        directory,
        "pboc_accounts",
        {
            "account_id": account_ids,
            "borrower_id": uscc[rng.integers(0, n_ent, n_reg)],
            "account_type": np.full(n_reg, "D1"),
            "institution_type": np.full(n_reg, "11"),
            "institution_id": np.full(n_reg, "B330300001"),
            "business_type": np.full(n_reg, "E1"),
            "guarantee_method": np.array(["1", "2", "3", "4"])[rng.integers(0, 4, n_reg)],
            "opened_on": np.full(n_reg, "2015-01-10"),
            "due_on": np.full(n_reg, "2025-01-10"),
            "amount": np.round(rng.lognormal(13, 1, n_reg), 2),
            "closed_on": np.full(n_reg, None),
        },
        fmt,
    )
    n_monthly = rows - sum(counts.values())  # top up to exactly `rows` rows
    per_account = -(-n_monthly // n_reg)  # consecutive months of each account, key unique
    idx = np.repeat(np.arange(n_reg), per_account)[:n_monthly]
    offset = np.tile(np.arange(per_account), n_reg)[:n_monthly]
    month = np.datetime64("2015-01") + offset.astype("timedelta64[M]")
    n_monthly = len(idx)
    statuses = np.array(list("NNNNNNNN1234C*"))
    account = account_ids[idx].astype(object)
    orphan = rng.random(n_monthly) < FAULT_RATE / 4
    account[orphan] = np.char.add("NO-SUCH-", np.arange(orphan.sum()).astype(str))
    counts["pboc_monthly"] = _write(
        directory,
        "pboc_monthly",
        {
            "account_id": account,
            "month": month.astype(str),
            "status": _corrupt(rng, statuses[rng.integers(0, len(statuses), n_monthly)], "Q"),
            "balance": _corrupt(rng, np.round(rng.random(n_monthly) * 1e6, 2), -1.0),
            "overdue_amount": np.zeros(n_monthly),
            "five_class": np.array(["1", "1", "1", "2"])[rng.integers(0, 4, n_monthly)],
        },
        fmt,
    )
    (directory / "delivery.json").write_text(
        json.dumps({"delivery_id": f"bench-{rows}-{fmt}", "delivered_on": "2021-01-15"})
    )
    return counts


_CHILD = """
import json, resource, sys, time
from features.ingest import ingest_delivery
start = time.perf_counter()
outcome = ingest_delivery(sys.argv[1], sys.argv[2])
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": elapsed, "peak_bytes": peak, "outcome": outcome.to_dict()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wzcredit-bench-") as tmp:
        delivery = Path(tmp) / "delivery"
        delivery.mkdir()
        started = time.perf_counter()
        counts = build_delivery(delivery, args.rows, args.format)
        print(
            f"built delivery: {sum(counts.values()):,} rows {counts} "
            f"in {time.perf_counter() - started:.1f} s"
        )
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(delivery), str(Path(tmp) / "w.duckdb")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(result.stdout.strip().splitlines()[-1])
    outcome = report["outcome"]
    rows, seconds = outcome["rows_in"], report["seconds"]
    print(f"format            {args.format}")
    print(f"rows in           {rows:,}")
    print(f"accepted          {outcome['accepted']:,}")
    print(f"quarantined       {outcome['quarantined']:,}")
    for table, t in outcome["tables"].items():
        print(
            f"  {table:<16}{t['rows_in']:>12,} in {t['quarantined']:>9,} quarantined  {t['rules']}"
        )
    print(f"wall time         {seconds:.2f} s")
    print(f"throughput        {rows / seconds:,.0f} rows/s (target ≥ 500,000)")
    print(f"peak memory (RSS) {report['peak_bytes'] / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
