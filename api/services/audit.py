"""The query log (征信业管理条例 第二十二条): one append-only row per data request.

`Ledger` is a pure ASGI middleware around the ``/v1`` routes. A route says whom it queried
and why by setting ``request.state.subject_ref`` / ``purpose`` / ``consent_id`` /
``outcome``; the authentication dependency sets ``request.state.key``. When the response
starts, the ledger writes the row — before the first byte reaches the client, so a client
that got an answer has its query logged, and a request whose row cannot be written gets a
503 instead of an unlogged answer. The row holds the route template (``/v1/persons/{id}``),
never the raw path, and the subject's pseudonym, never a resident ID.

Rows are written by one thread per ledger (`LogWriter`) in group commits: the rows of the
requests that finish while a transaction is being written go together into the next one,
and each request waits for its own row's commit before answering. Under load this is one
transaction for many rows instead of one per request, and no request waits for another's
lock; a batch that fails is written again row by row, so a bad row fails its own request
only.

The same middleware counts requests and their latency for Prometheus.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Connection, Insert, insert
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db.session import Database
from api.db.tables import QueryLog, utcnow

logger = logging.getLogger(__name__)

#: the data routes: the JSON API and the console's pages (not its stylesheet)
LOGGED_PREFIXES = ("/v1/", "/console")
NOT_LOGGED_PREFIXES = ("/console/static",)
REFUSED_START: Message = {
    "type": "http.response.start",
    "status": 503,
    "headers": [(b"content-type", b"application/json")],
}
REFUSED_BODY: Message = {
    "type": "http.response.body",
    "body": b'{"detail":[{"field":"query_log","rule":"written",'
    b'"message":"the query could not be logged"}]}',
}


class Metrics:
    """The service's Prometheus metrics, in their own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wzcredit_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "wzcredit_request_seconds", "Request latency", ["route"], registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )  # fmt: skip
        self.audit_failures = Counter(
            "wzcredit_audit_failures", "Query-log rows that could not be written",
            registry=self.registry,
        )  # fmt: skip


#: rows in one group commit at most
MAX_BATCH = 256
#: a writer thread with nothing to write for this long ends (a new one starts when needed)
WRITER_IDLE_SECONDS = 2.0
#: how long a group commit waits for SQLite's write lock before failing its requests (503)
LOCK_WAIT_SECONDS = 30.0
_SQLITE = SQLiteDialect_pysqlite()
#: a time as SQLAlchemy stores a DateTime on SQLite (what reads of the log expect)
_sqlite_time: Callable[[dt.datetime], Any] = QueryLog.__table__.c.at.type.dialect_impl(
    _SQLITE
).bind_processor(_SQLITE) or (lambda moment: moment)

#: a row to write, its database, and where to say it was written
_Job = tuple[dict[str, Any], Database, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(outcomes: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in outcomes:
        if future.done():  # the request was cancelled meanwhile
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


#: the query log's columns as written (``id`` is the database's)
COLUMNS = tuple(c.name for c in QueryLog.__table__.c if c.name != "id")


def _statement(rows: list[dict[str, Any]]) -> Insert:
    """One INSERT of every row, stamped with the time of writing."""
    at = utcnow()
    return insert(QueryLog).values([{"at": at, **row} for row in rows])


def _insert(database: Database, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in one transaction of a pooled connection."""
    with database.engine.begin() as connection:
        connection.execute(_statement(rows))


@functools.lru_cache(maxsize=64)
def _sqlite_insert(rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT INTO query_log ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)}"


class _Sink:
    """The writer thread's own connection to one database, kept while the thread lives.

    On SQLite a batch is one multi-row INSERT in autocommit: one statement, one step of
    SQLite, atomic, and one release of the GIL. (Through SQLAlchemy a batch released it
    five times or more — begin, each row of ``executemany``, commit — and each time it may
    wait the switch interval, 5 ms, to take it back while request threads run: a group
    commit took 10-20 ms.) The write lock is asked for without SQLite's busy handler, which
    sleeps 1, 2, 5, 10, 15 … ms between attempts: two worker processes take turns at a lock
    held well under a millisecond, so the sink tries again after at most 2 ms instead, for
    up to `LOCK_WAIT_SECONDS`. The connection is discarded, not pooled, when the thread
    ends or a write fails. Other databases take the batch through SQLAlchemy.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.sqlite = database.backend == "sqlite"
        self._connection: Connection | None = None
        self._driver: Any = None

    def _open(self) -> Connection:
        if self._connection is None:
            connection = self.database.engine.connect()
            if self.sqlite:
                driver = connection.connection.dbapi_connection
                assert driver is not None
                driver.execute("PRAGMA busy_timeout=0")
                driver.isolation_level = None  # autocommit: each statement commits itself
                self._driver = driver
            self._connection = connection
        return self._connection

    def insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            connection = self._open()
            if self.sqlite:
                self._insert_sqlite(rows)
                return
            with connection.begin():
                connection.execute(_statement(rows))
        except Exception:
            self.close()
            raise

    def _insert_sqlite(self, rows: list[dict[str, Any]]) -> None:
        stamp = _sqlite_time(utcnow())
        values = [stamp if c == "at" else row[c] for row in rows for c in COLUMNS]
        sql = _sqlite_insert(len(rows))
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.0002
        while True:
            try:
                self._driver.execute(sql, values)
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def close(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            connection.invalidate()  # never back to the pool with its busy timeout of 0
            connection.close()


class LogWriter:
    """One thread writing query-log rows in group commits; `write` awaits one row's commit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def write(self, database: Database, row: dict[str, Any]) -> None:
        """Write ``row``; returns once it is committed, raises what the write raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._jobs.put((row, database, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="query-log-writer", daemon=True
                )
                self._thread.start()
        await future

    def _run(self) -> None:
        sinks: dict[int, _Sink] = {}
        try:
            while True:
                try:
                    batch = [self._jobs.get(timeout=WRITER_IDLE_SECONDS)]
                except queue.Empty:
                    with self._lock:
                        if self._jobs.empty():
                            self._thread = None
                            return
                    continue
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._jobs.get_nowait())
                    except queue.Empty:
                        break
                self._commit(batch, sinks)
        finally:
            for sink in sinks.values():
                sink.close()

    def _commit(self, batch: list[_Job], sinks: dict[int, _Sink]) -> None:
        errors: list[BaseException | None] = [None] * len(batch)
        for key, database in {id(job[1]): job[1] for job in batch}.items():
            sink = sinks.get(key)
            if sink is None or sink.database is not database:
                sink = sinks[key] = _Sink(database)
            mine = [i for i, job in enumerate(batch) if id(job[1]) == key]
            try:
                sink.insert([batch[i][0] for i in mine])
            except Exception as exc:
                if len(mine) == 1:
                    errors[mine[0]] = exc
                    continue
                for i in mine:  # which row failed? each on its own
                    try:
                        sink.insert([batch[i][0]])
                    except Exception as single:
                        errors[i] = single
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_, _, loop, future), error in zip(batch, errors, strict=True):
            by_loop.setdefault(loop, []).append((future, error))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, outcomes)
            except RuntimeError:  # the loop has closed: nobody waits any more
                logger.warning("query log: %d rows settled after their loop closed", len(outcomes))


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(unmatched)"


def log_row(scope: Scope, status: int) -> dict[str, Any]:
    """The query-log row of a finished request, from what the route left in its state."""
    state: dict[str, Any] = scope.setdefault("state", {})
    key = state.get("key")
    return {
        "request_id": state.get("request_id") or str(uuid.uuid4()),
        "key_id": getattr(key, "id", None),
        "role": getattr(key, "role", None),
        "institution": getattr(key, "institution", None),
        "method": scope["method"],
        "route": _route(scope)[:200],
        "subject_ref": state.get("subject_ref"),
        "purpose": state.get("purpose"),
        "consent_id": state.get("consent_id"),
        "status": status,
        "outcome": str(state.get("outcome", ""))[:200],
    }


class Ledger:
    """ASGI middleware: query log for ``/v1`` requests, metrics for all."""

    def __init__(self, app: ASGIApp, database: Callable[[], Database], metrics: Metrics) -> None:
        self.app = app
        self.database = database
        self.metrics = metrics
        self.writer = LogWriter()

    def _write(self, row: dict[str, Any]) -> None:
        """Write one row in its own transaction (blocking; requests go through `writer`)."""
        _insert(self.database(), [row])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        logged = path.startswith(LOGGED_PREFIXES) and not path.startswith(NOT_LOGGED_PREFIXES)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = str(uuid.uuid4())
        status_seen = 500

        async def send_logged(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = int(message["status"])
                if logged:
                    try:
                        await self.writer.write(self.database(), log_row(scope, status_seen))
                    except Exception:
                        self.metrics.audit_failures.inc()
                        logger.exception("query log row not written; answering 503")
                        status_seen = 503
                        await send(REFUSED_START)
                        await send(REFUSED_BODY)
                        raise _Refused from None
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        except _Refused:
            pass
        finally:
            route = _route(scope)
            self.metrics.requests.labels(scope["method"], route, str(status_seen)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class _Refused(Exception):  # noqa: N818 - control flow: the answer was replaced by a 503
    """Raised out of the app once a 503 replaced an answer whose log row failed."""
