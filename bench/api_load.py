"""Load test of the score endpoint over HTTP: throughput, p50/p99 latency, errors (issue 7).

Drives ``GET /v1/entities/{uscc}/score`` (the score with its reasons) of the running service
with a real load generator, rotating over every scored entity of a demo folder: by default
50 concurrent connections for 60 seconds, as a regulator (no consent needed; the query is
logged like any other). The load generator is wrk with ``bench/api_load.lua`` (about a tenth
of a core at these rates; ``apt-get install wrk``), or locust headless when wrk is missing.

The bench starts the service itself (``wzcredit serve`` on 127.0.0.1 and a free port, on a
scored ``--workdir`` such as ``wzcredit demo`` leaves) unless ``--url`` names a running one,
creates its API key directly in the service database, warms up, measures, checks that the
query log holds a row for every answered request, revokes the key and stops the server::

    .venv/bin/python bench/api_load.py --workdir demo
    .venv/bin/python bench/api_load.py --workdir demo --clients 50 --duration 60 --workers 2
    .venv/bin/python bench/api_load.py --workdir demo --url http://127.0.0.1:8000

Targets on 2 cores (issue 7): at least 300 requests/s, p99 under 50 ms, no errors. Only
addresses on this machine are ever loaded (the URL must be a loopback address).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.db.session import Database  # noqa: E402
from api.db.tables import ApiKey, QueryLog  # noqa: E402
from api.services.directory import load_directory  # noqa: E402
from api.services.keys import create_key, revoke_key  # noqa: E402
from scoring.batch import SnapshotStore  # noqa: E402

LUA = Path(__file__).with_name("api_load.lua")
TARGETS = {"throughput": 300.0, "p99_ms": 50.0, "errors": 0}
LOOPBACK = ("127.", "localhost", "[::1]", "::1")
LOCUSTFILE = """
import itertools, os
from locust import FastHttpUser, constant, task

PATHS = [p for p in open(os.environ["WZCREDIT_BENCH_PATHS"]).read().split() if p]
HEADERS = {"Authorization": "Bearer " + os.environ["WZCREDIT_BENCH_KEY"]}
NEXT = itertools.count()


class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def score(self):
        path = PATHS[next(NEXT) % len(PATHS)]
        self.client.get(path, headers=HEADERS, name="/v1/entities/{uscc}/score")
"""


@dataclass
class Result:
    tool: str
    clients: int
    seconds: float
    workers: int | None
    entities: int
    requests: int
    throughput: float
    p50_ms: float
    p90_ms: float | None
    p99_ms: float
    max_ms: float | None
    errors: int
    logged: int | None = None
    load_before: float | None = None

    def met(self) -> dict[str, bool]:
        return {
            "throughput": self.throughput >= TARGETS["throughput"],
            "p99": self.p99_ms < TARGETS["p99_ms"],
            "errors": self.errors == TARGETS["errors"],
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request_paths(workdir: Path, role: str, limit: int | None) -> list[str]:
    """The score path of every scored entity (enterprises only for an underwriter)."""
    _, scores = SnapshotStore(workdir / "scores").read()
    usccs = scores.column("uscc").to_pylist()
    purpose = ""
    if role == "underwriter":  # a 个体工商户's data needs its operator's consent: leave them out
        entities = load_directory(workdir / "warehouse.duckdb").entities
        usccs = [u for u in usccs if u in entities and not entities[u].natural_person]
        purpose = "?purpose=loan_approval"
    if limit:
        usccs = usccs[:limit]
    if not usccs:
        raise SystemExit("no scored entities to query: run wzcredit demo (or score) first")
    return [f"/v1/entities/{u}/score{purpose}" for u in usccs]


class Service:
    """``wzcredit serve`` in a subprocess, stopped with SIGINT (then killed) at the end."""

    def __init__(self, workdir: Path, workers: int, tracking_uri: str | None, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "wzcredit.cli", "serve", "--workdir", str(workdir),
            "--port", str(self.port), "--workers", str(workers),
        ]  # fmt: skip
        if tracking_uri:
            command += ["--tracking-uri", tracking_uri]
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the service exited ({self.process.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"the service was not ready within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log_file.close()


def run_wrk(url: str, env: dict[str, str], clients: int, seconds: float, threads: int) -> dict:
    command = [
        "wrk", f"-t{min(threads, clients)}", f"-c{clients}", f"-d{seconds:.0f}s",
        "--timeout", "10s", "-s", str(LUA), url,
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    summary: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def wrk_result(summary: dict, clients: int, workers: int | None, entities: int) -> Result:
    seconds = summary["duration_us"] / 1e6
    latency = summary["latency_us"]
    return Result(
        tool="wrk", clients=clients, seconds=seconds, workers=workers, entities=entities,
        requests=summary["requests"], throughput=summary["requests"] / seconds,
        p50_ms=latency["p50"] / 1e3, p90_ms=latency["p90"] / 1e3, p99_ms=latency["p99"] / 1e3,
        max_ms=latency["max"] / 1e3, errors=sum(summary["errors"].values()),
    )  # fmt: skip


def run_locust(
    url: str, env: dict[str, str], clients: int, seconds: float, workers: int | None,
    entities: int,
) -> Result:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wzcredit-locust-") as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE, encoding="utf-8")
        prefix = Path(tmp) / "stats"
        command = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(clients), "-r", str(clients), "-t", f"{seconds:.0f}s", "--host", url,
            "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
        ]  # fmt: skip
        subprocess.run(command, env=env, capture_output=True, timeout=seconds + 120, check=False)
        with (Path(f"{prefix}_stats.csv")).open(encoding="utf-8") as stats:
            total = next(r for r in csv.DictReader(stats) if r["Name"] == "Aggregated")
    return Result(
        tool="locust", clients=clients, seconds=seconds, workers=workers, entities=entities,
        requests=int(total["Request Count"]), throughput=float(total["Requests/s"]),
        p50_ms=float(total["50%"]), p90_ms=float(total["90%"]), p99_ms=float(total["99%"]),
        max_ms=float(total["Max Response Time"]), errors=int(total["Failure Count"]),
    )  # fmt: skip


def logged_rows(database: Database, key_id: int) -> int:
    with database.session() as session:
        count = session.scalar(select(func.count()).where(QueryLog.key_id == key_id))
    return int(count or 0)


def drive(args: argparse.Namespace, url: str, database: Database) -> Result:
    paths = request_paths(args.workdir, args.role, args.entities)
    created = create_key(database, args.role, "bench", label="api_load")
    with database.session() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == created.prefix))
    assert key_id is not None
    try:
        with tempfile.TemporaryDirectory(prefix="wzcredit-load-") as tmp:
            listing = Path(tmp) / "paths.txt"
            listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
            env = {**os.environ, "WZCREDIT_BENCH_PATHS": str(listing),
                   "WZCREDIT_BENCH_KEY": created.key}  # fmt: skip
            probe = httpx.get(
                url + paths[0], headers={"Authorization": f"Bearer {created.key}"}, timeout=10
            )
            if probe.status_code != 200 or "reasons" not in probe.json():
                raise SystemExit(f"the score endpoint answered {probe.status_code}: {probe.text}")
            tool = args.tool
            if tool == "auto":
                tool = "wrk" if shutil.which("wrk") else "locust"
                if tool == "locust":
                    print("wrk not found (apt-get install wrk): using locust headless, which "
                          "itself needs about a core at these rates", file=sys.stderr)  # fmt: skip
            workers = args.workers if args.url is None else None
            load = os.getloadavg()[0]
            if args.warmup > 0:
                print(f"warming up for {args.warmup:.0f} s …", file=sys.stderr)
                if tool == "wrk":
                    run_wrk(url, env, args.clients, args.warmup, args.threads)
                else:
                    run_locust(url, env, args.clients, args.warmup, workers, len(paths))
            before = logged_rows(database, key_id)
            print(f"measuring: {args.clients} clients for {args.duration:.0f} s over "
                  f"{len(paths):,} entities with {tool} …", file=sys.stderr)  # fmt: skip
            if tool == "wrk":
                summary = run_wrk(url, env, args.clients, args.duration, args.threads)
                result = wrk_result(summary, args.clients, workers, len(paths))
            else:
                result = run_locust(url, env, args.clients, args.duration, workers, len(paths))
            time.sleep(0.5)  # the last answers' rows are committed before those answers left
            result.logged = logged_rows(database, key_id) - before
            result.load_before = load
            return result
    finally:
        revoke_key(database, created.prefix)


def report(result: Result) -> None:
    met = result.met()

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    workers = "running service" if result.workers is None else f"{result.workers} worker(s)"
    print(f"\nGET /v1/entities/{{uscc}}/score (with reasons): {result.tool}, {result.clients} "
          f"clients, {result.seconds:.1f} s, {workers}, {result.entities:,} entities "
          f"(load average before: {result.load_before:.2f})")  # fmt: skip
    print(f"  requests      {result.requests:,}")
    print(f"  throughput    {result.throughput:,.0f} requests/s   "
          f"(target ≥ {TARGETS['throughput']:.0f}: {mark(met['throughput'])})")  # fmt: skip
    print(f"  latency p50   {result.p50_ms:.1f} ms")
    if result.p90_ms is not None:
        print(f"  latency p90   {result.p90_ms:.1f} ms")
    print(f"  latency p99   {result.p99_ms:.1f} ms   "
          f"(target < {TARGETS['p99_ms']:.0f} ms: {mark(met['p99'])})")  # fmt: skip
    if result.max_ms is not None:
        print(f"  latency max   {result.max_ms:.1f} ms")
    print(f"  errors        {result.errors}   (target 0: {mark(met['errors'])})")
    print(f"  query log     {result.logged:,} rows for {result.requests:,} answered requests "
          f"(in flight at the end are logged too)")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="a scored demo folder (wzcredit demo --workdir): entities and "
                             "the service database")  # fmt: skip
    parser.add_argument("--url", help="a running service on this machine (default: start one)")
    parser.add_argument(
        "--database-url", help="its database (default: sqlite:///WORKDIR/wzcredit.db)"
    )
    parser.add_argument("--tracking-uri", help="MLflow store of the served champion")
    parser.add_argument("--clients", type=int, default=50, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--role", choices=["regulator", "underwriter"], default="regulator")
    parser.add_argument("--entities", type=int, help="rotate over the first N entities only")
    parser.add_argument("--tool", choices=["auto", "wrk", "locust"], default="auto")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.url and not urlsplit(args.url).netloc.startswith(LOOPBACK):
        parser.error("--url: loopback: load only a service on this machine (127.0.0.1)")
    if not (args.workdir / "scores" / "CURRENT").exists():
        parser.error(f"--workdir: scored: no score snapshot in {args.workdir / 'scores'}")
    return args


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    database = Database(args.database_url or f"sqlite:///{args.workdir / 'wzcredit.db'}")
    service = None
    try:
        url = args.url
        if url is None:
            log = Path(tempfile.mkstemp(prefix="wzcredit-serve-", suffix=".log")[1])
            service = Service(args.workdir.resolve(), args.workers, args.tracking_uri, log)
            print(f"starting the service on {service.url} ({args.workers} worker(s)); "
                  f"its log: {log}", file=sys.stderr)  # fmt: skip
            service.wait_ready()
            url = service.url
        result = drive(args, url.rstrip("/"), database)
    finally:
        if service is not None:
            service.stop()
        database.dispose()
    if args.json:
        print(json.dumps({**asdict(result), "met": result.met()}))
    else:
        report(result)
    return result


if __name__ == "__main__":
    main()
