"""Where exceptions become problem+json responses: the one mapping, installed on the app.

The kinds of problem live in `api.problems`; what a database failure means lives in
`db.errors`. This module only connects the two to FastAPI's exception handlers.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.observability import metrics
from api.problems import (
    BadRequest,
    Problem,
    ServiceUnavailable,
    ValidationFailed,
    for_status,
    internal_error,
    problem_response,
    render,
)
from db.errors import RetryTransaction, describe, is_unavailable

log = logging.getLogger(__name__)

# The published bounds of a 422's `errors` (api/http/openapi.py): a body with thousands of unknown
# keys, or one key thousands of characters long, must not be echoed back in full.
MAX_FIELD_ERRORS = 100
FIELD_PATH_MAX = 256
FIELD_MESSAGE_MAX = 512


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors()[:MAX_FIELD_ERRORS]:
        loc = [str(part) for part in err.get("loc", ())]
        errors.append(
            {
                "location": loc[0] if loc else "request",
                "field": ".".join(loc[1:])[:FIELD_PATH_MAX],
                "message": str(err.get("msg", "invalid"))[:FIELD_MESSAGE_MAX],
                "type": err.get("type", "value_error"),
            }
        )
    return errors


def _allowed_methods(request: Request) -> str:
    """Every method some route serves on this path (Starlette reports only the first route's)."""
    allowed = [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI, retry_after_seconds: int) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return render(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = for_status(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else kind.title
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = "No such resource."
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(kind, detail, status=exc.status_code, headers=headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return render(BadRequest("The request body is not valid JSON."))
        return render(
            ValidationFailed("The request does not match the schema.", errors=errors)
        )

    async def on_database(_: Request, exc: Exception) -> JSONResponse:
        unavailable = is_unavailable(exc)
        metrics.record_database_error(exc, unavailable=unavailable)
        if unavailable:
            # The driver's first line says which trouble it was ("server closed the connection
            # unexpectedly", "terminating connection due to administrator command", ...).
            log.warning("database unavailable: %s", describe(exc, with_message=True))
            return render(
                ServiceUnavailable(
                    "The database is temporarily unavailable; retry shortly.",
                    headers={"Retry-After": str(retry_after_seconds)},
                )
            )
        log.exception("database error")
        return internal_error()

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return internal_error()

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(PoolTimeoutError, on_database)
    app.add_exception_handler(DisconnectionError, on_database)
    app.add_exception_handler(psycopg.Error, on_database)
    app.add_exception_handler(RetryTransaction, on_database)
    app.add_exception_handler(Exception, on_unexpected)
