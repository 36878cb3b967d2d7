"""The query log (征信业管理条例 第二十二条): one append-only row per data request.

`Ledger` is a pure ASGI middleware around the ``/v1`` routes. A route says whom it queried
and why by setting ``request.state.subject_ref`` / ``purpose`` / ``consent_id`` /
``outcome``; the authentication dependency sets ``request.state.key``. When the response
starts, the ledger writes the row — before the first byte reaches the client, so a client
that got an answer has its query logged, and a request whose row cannot be written gets a
503 instead of an unlogged answer. The row holds the route template (``/v1/persons/{id}``),
never the raw path, and the subject's pseudonym, never a resident ID.

The same middleware counts requests and their latency for Prometheus.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db.session import Database
from api.db.tables import QueryLog

logger = logging.getLogger(__name__)

LOGGED_PREFIX = "/v1/"
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

    def _write(self, row: dict[str, Any]) -> None:
        with self.database().engine.begin() as connection:
            connection.execute(insert(QueryLog), [row])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        logged = scope["path"].startswith(LOGGED_PREFIX)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = str(uuid.uuid4())
        status_seen = 500

        async def send_logged(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = int(message["status"])
                if logged:
                    try:
                        await anyio.to_thread.run_sync(self._write, log_row(scope, status_seen))
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
