"""The one place where errors become HTTP responses.

Body of every error: ``{"detail": [{"field": ..., "rule": ..., "message": ...}, ...]}`` —
one item per broken rule, so that a client can point at the field to fix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Unauthenticated,
    Unavailable,
)
from features.errors import FeatureError
from models.errors import ModelError
from scoring.errors import ScoringError

STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (ServiceError, 400),
    (FeatureError, 422),  # e.g. a malformed USCC: which check failed
    (ScoringError, 422),  # e.g. a malformed PBOC report string
    (ModelError, 422),
)


#: paths of the web console, whose errors are pages rather than JSON
CONSOLE = "/console"


def _item(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def status_of(exc: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


async def domain_error(request: Request, exc: Exception) -> Response:
    field, rule, message = exc.field, exc.rule, exc.message  # type: ignore[attr-defined]
    status = status_of(exc)
    if request.url.path.startswith(CONSOLE):  # the console answers with a page
        from api.console.router import error_page  # noqa: PLC0415

        request.state.outcome = f"error:{field}:{rule}"
        return error_page(request, exc, status)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    request.state.outcome = f"error:{field}:{rule}"
    return JSONResponse({"detail": [_item(field, rule, message)]}, status, headers=headers)


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        _item(_field(tuple(error.get("loc", ()))), str(error.get("type", "invalid")),
              str(error.get("msg", "invalid value")))
        for error in exc.errors()
    ]  # fmt: skip
    request.state.outcome = "error:validation"
    return JSONResponse({"detail": items}, 422)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    rule = {404: "route_exists", 405: "method_allowed"}.get(exc.status_code, "http")
    return JSONResponse(
        {"detail": [_item("path", rule, str(exc.detail))]}, exc.status_code, headers=exc.headers
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    for kind in (ServiceError, FeatureError, ScoringError, ModelError):
        app.add_exception_handler(kind, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
