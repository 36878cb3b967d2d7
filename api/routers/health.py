"""健康检查 / health, readiness and Prometheus metrics (no key needed, no data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ServicesDep

router = APIRouter(tags=["health 运行状态"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    database: bool
    model_loaded: bool
    model_version: str | None
    registry_error: str | None
    snapshot: str | None
    snapshot_error: str | None
    policy_version: str


@router.get("/health", summary="存活 / liveness")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    summary="就绪 / readiness",
    description="Ready when the database answers and a score snapshot is served.",
    responses={503: {"model": Readiness}},
)
def ready(services: ServicesDep, response: Response) -> Readiness:
    try:
        with services.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = True
    except Exception:
        database = False
    snapshot = services.snapshot
    ok = database and snapshot is not None
    if not ok:
        response.status_code = 503
    return Readiness(
        ready=ok, database=database, model_loaded=services.models.loaded,
        model_version=services.models.served.version if services.models.loaded else None,
        registry_error=services.models.last_error,
        snapshot=snapshot.info.file if snapshot else None,
        snapshot_error=services.snapshot_error, policy_version=services.policy.version,
    )  # fmt: skip


@router.get("/metrics", summary="Prometheus 指标 / metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
