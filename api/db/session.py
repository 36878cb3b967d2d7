"""Engine and sessions for the service database (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

#: ``Session.info`` key set once a session has written (flushed or executed DML)
WROTE = "wzcredit.wrote"


def _mark_flush(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


def _mark_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


#: kept open: every request thread (anyio allows 40) and the query-log writer may hold one at
#: once; a connection opened beyond the pool is closed again on return, and opening one costs
#: its pragmas (switching to WAL takes a lock), so under load a small pool churns
SQLITE_POOL_SIZE = 48
#: how long a SQLite statement waits for a lock held by another connection
BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never block the writer), foreign keys on, wait for locks up to 30 s."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created if it does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool: dict[str, int] = {"pool_size": SQLITE_POOL_SIZE}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            pool["max_overflow"] = 8  # a file: a queue pool (in memory: one per thread)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "after_flush", _mark_flush)
        event.listen(self.sessions, "do_orm_execute", _mark_dml)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @staticmethod
    def wrote(session: Session) -> bool:
        """True when ``session`` has written or holds changes that its commit would write."""
        return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)

    def dispose(self) -> None:
        self.engine.dispose()
