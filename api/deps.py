"""Typed dependencies: the services, a database session, the caller's key and role checks.

Routes take ``ServicesDep``, ``SessionDep`` and ``Permitted(Permission.X)`` and never read
``app.state`` or the environment themselves; tests override `get_services`.

The dependencies are coroutines that do their work on the event loop and hand to a worker
thread only what may block: a key lookup on a cache miss, a commit that writes (or any
commit on a server database). FastAPI would run a plain function dependency in a worker
thread, one hop each, which costs more than the dependency's own work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.db.tables import ApiKey
from api.errors import Forbidden, Unauthenticated
from api.security import Permission, Role, allowed, key_hash
from api.state import Services

#: how long a key lookup is trusted in one process (a revoked key stops within this)
KEY_CACHE_SECONDS = 10.0

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer wzc_…`")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(services: ServicesDep) -> AsyncIterator[Session]:
    """A session in one transaction, committed when the route returns, rolled back on error.

    A transaction that only read an embedded (SQLite) database ends on the event loop (no
    I/O to wait for); one that wrote, or any on a server database, ends in a worker thread.
    """
    database = services.database
    session = database.sessions()
    session.begin()
    commit = False
    try:
        yield session
        commit = True
    finally:
        if database.backend == "sqlite" and not database.wrote(session):
            _finish(session, commit)
        else:
            # a fresh limiter, as FastAPI does for the exit of a generator dependency: the
            # commit of a transaction that holds SQLite's write lock must never wait for a
            # thread behind requests that wait for that lock (that would stall them all)
            with anyio.CancelScope(shield=True):  # a client gone away still ends it
                await anyio.to_thread.run_sync(
                    _finish, session, commit, limiter=anyio.CapacityLimiter(1)
                )


#: committed when the route function returns, before the response (and its log row) starts
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The caller: an API key's id, role, institution and (for a subject) its own id."""

    id: int
    prefix: str
    role: Role
    institution: str
    subject_id: str | None


def _lookup(services: Services, digest: str) -> KeyInfo | None:
    with services.database.session() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if key is None or key.revoked_at is not None:
            return None
        return KeyInfo(key.id, key.prefix, Role(key.role), key.institution, key.subject_id)


class KeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, KeyInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, KeyInfo | None]:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def known(self, services: Services, digest: str) -> KeyInfo | None:
        """The key of ``digest`` from the cache, else from the database (blocking)."""
        hit, info = self.get(digest)
        if not hit:
            info = _lookup(services, digest)
            self.put(digest, info)
        return info

    def put(self, digest: str, info: KeyInfo | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + KEY_CACHE_SECONDS, info)


async def authenticate(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> KeyInfo:
    """The caller's key; `Unauthenticated` (401) without a valid bearer key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("Authorization", "bearer_key", "send 'Authorization: Bearer <key>'")
    digest = key_hash(credentials.credentials)
    cache: KeyCache = request.app.state.key_cache
    hit, info = cache.get(digest)
    if not hit:  # only a miss leaves the event loop for the database
        info = await anyio.to_thread.run_sync(cache.known, services, digest)
    if info is None:
        raise Unauthenticated("Authorization", "known_key", "the API key is unknown or revoked")
    request.state.key = info
    return info


CurrentKey = Annotated[KeyInfo, Depends(authenticate)]


def permitted(permission: Permission) -> Callable[..., Any]:
    """A dependency: the caller's key, if its role holds ``permission`` (else 403)."""

    async def check(key: CurrentKey) -> KeyInfo:
        if not allowed(key.role, permission):
            raise Forbidden("role", permission.value, f"role {key.role} may not use this endpoint")
        return key

    check.__name__ = f"permitted_{permission.name.lower()}"
    return check


def Permitted(permission: Permission) -> Any:  # noqa: N802 - reads as a type in signatures
    """``key: Annotated[KeyInfo, Permitted(Permission.X)]`` in a route signature."""
    return Depends(permitted(permission))
