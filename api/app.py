"""The app factory: settings in, a FastAPI app out; resources load once in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import handlers
from api.console.router import router as console_router
from api.deps import KeyCache
from api.routers import (
    audit_log,
    consents,
    health,
    objections,
    preapproval,
    repairs,
    reports,
    scores,
    supervision,
)
from api.services.audit import Ledger
from api.settings import Settings
from api.state import Services, build_services

logger = logging.getLogger(__name__)

DESCRIPTION = """
温州三位一体信用评分与信易贷服务 / Wenzhou three-in-one credit scoring and 信易贷 service.

Scores, grades, supervision classes and 信易贷 pre-approvals for market entities, merging
public credit, PBOC credit reference and registered private-lending data. Every data
endpoint needs a bearer API key (`Authorization: Bearer wzc_…`) whose role decides what it
may see; a natural person's data needs their recorded consent; every query is logged.
Errors name the field and the rule: `{"detail": [{"field", "rule", "message"}]}`.
"""

CONSOLE_STATIC = Path(__file__).with_name("console") / "static"
#: the routers, in the order of the OpenAPI document
ROUTERS = (
    scores.router,
    preapproval.router,
    supervision.router,
    consents.router,
    objections.router,
    repairs.router,
    reports.router,
    audit_log.router,
    health.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | Callable[[], Services] | None = None,
) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings
        The service's settings; built from the environment by the entry point when None.
    services
        Ready services (or a factory) instead of building them from ``settings`` at
        start-up: tests and benchmarks pass their own.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is None:
            app.state.services = build_services(settings or Settings())  # type: ignore[call-arg]
        elif callable(services):
            app.state.services = services()
        else:
            app.state.services = services
        refresher = asyncio.create_task(_refresh_periodically(app.state.services))
        yield
        refresher.cancel()
        app.state.services.database.dispose()

    app = FastAPI(
        title="wzcredit",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.key_cache = KeyCache()
    if isinstance(services, Services):  # usable even by clients that skip the lifespan
        app.state.services = services
    handlers.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(console_router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_STATIC), name="console_static")
    app.add_middleware(
        Ledger,
        database=lambda: app.state.services.database,
        metrics=_LazyMetrics(app),  # type: ignore[arg-type]
    )
    return app


async def _refresh_periodically(services: Services) -> None:
    """`Services.refresh` every ``refresh_seconds``, off the event loop; never raises."""
    interval = services.settings.refresh_seconds
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(services.refresh)
        except Exception:  # a failed refresh must not stop serving or later refreshes
            logger.exception("refresh failed; serving what was loaded")


class _LazyMetrics:
    """The services' metrics, looked up when first used (the services load in the lifespan)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def __getattr__(self, name: str) -> object:
        return getattr(self._app.state.services.metrics, name)
