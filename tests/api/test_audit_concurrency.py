"""The query log under concurrent load: a real uvicorn server, 20 clients, none lost.

Requests allowed, forbidden and unauthenticated are mixed; afterwards the query log holds
exactly one row per request with the status its client received, under unique request
ids, and every allowed underwriter query left exactly one inquiry record naming its row.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from api.db.tables import InquiryRecord, QueryLog
from api.state import Services
from tests.api.conftest import Keys, Workspace

REQUESTS = 200
CLIENTS = 20
#: the whole run is bounded; one request may take this long at most
RUN_SECONDS = 120
REQUEST_SECONDS = 30


@dataclass(frozen=True)
class Call:
    kind: str
    path: str
    headers: dict[str, str]
    expected: int


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 and a free port, in a background thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive()


def calls(keys: Keys, workspace: Workspace) -> list[Call]:
    """REQUESTS calls, cycling over six kinds and over the scored entities."""
    enterprises = [f.uscc for f in workspace.entities(natural_person=False)]
    businesses = [f.uscc for f in workspace.entities(natural_person=True)]
    out = []
    for i in range(REQUESTS):
        enterprise = enterprises[i % len(enterprises)]
        business = businesses[i % len(businesses)]
        kind = (
            Call("regulator", f"/v1/entities/{enterprise}/score", keys.regulator, 200),
            Call("underwriter", f"/v1/entities/{enterprise}/score?purpose=loan_approval",
                 keys.underwriter, 200),
            Call("no_consent", f"/v1/entities/{business}/score?purpose=loan_approval",
                 keys.underwriter, 403),
            Call("role", f"/v1/persons/{keys.business.legal_rep_id}/scores", keys.analyst, 403),
            Call("no_key", f"/v1/entities/{enterprise}/score", {}, 401),
            Call("bad_key", f"/v1/entities/{enterprise}/score",
                 {"Authorization": "Bearer wzc_00000000_unknown"}, 401),
        )[i % 6]  # fmt: skip
        out.append(kind)
    return out


def logged(services: Services) -> int:
    with services.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(QueryLog)) or 0)


def drive(
    base: str, planned: list[Call], services: Services
) -> tuple[list[int], list[tuple[int, int]]]:
    """Send every call from CLIENTS concurrent clients (threads, one connection each): the
    statuses in call order, and (answers received so far, rows in the log) after each."""
    statuses = [0] * len(planned)
    seen: list[tuple[int, int]] = []
    pending = iter(range(len(planned)))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=REQUEST_SECONDS) as http:
            while True:
                with lock:
                    index = next(pending, None)
                if index is None:
                    return
                call = planned[index]
                status = http.get(call.path, headers=call.headers).status_code
                with lock:
                    statuses[index] = status
                    answered = sum(1 for s in statuses if s)
                seen.append((answered, logged(services)))

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result(timeout=RUN_SECONDS)
    return statuses, seen


def test_every_concurrent_request_is_logged_once(
    server: str, keys: Keys, workspace: Workspace, services: Services
) -> None:
    planned = calls(keys, workspace)
    statuses, seen = drive(server, planned, services)

    assert statuses == [c.expected for c in planned]
    # an answer leaves only after its row is committed: never fewer rows than answers
    assert all(rows >= answered for answered, rows in seen)
    with services.database.session() as session:
        rows = session.scalars(select(QueryLog)).all()
        inquiries = session.scalars(select(InquiryRecord)).all()
        assert len(rows) == REQUESTS  # none lost, none twice
        assert len({r.request_id for r in rows}) == REQUESTS
        assert Counter(r.status for r in rows) == Counter(statuses)
        by_role = Counter((r.role, r.status) for r in rows)
        expected = Counter(
            ({"regulator": "regulator", "underwriter": "underwriter", "no_consent": "underwriter",
              "role": "analyst"}.get(c.kind), c.expected)
            for c in planned
        )  # fmt: skip
        assert by_role == expected
        assert all(r.key_id is None for r in rows if r.status == 401)
        allowed = {r.request_id for r in rows if r.role == "underwriter" and r.status == 200}
        # each allowed underwriter query left one inquiry record; the refused ones none
        assert sorted(i.query_id for i in inquiries) == sorted(allowed)
        logged_text = " ".join(f"{r.route} {r.outcome}" for r in rows)
    assert keys.business.legal_rep_id not in logged_text
