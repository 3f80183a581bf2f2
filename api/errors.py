"""RFC 9457 problem+json: one exception type per meaning, mapped to a response in one place."""

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

from api import metrics
from db.session import RetryTransaction

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:tasks-api:problem:"

# SQLSTATEs that mean "the database cannot serve this right now", not "your request is bad":
# 08 connection exception; 53 insufficient resources (too many connections, disk full); 57
# operator intervention (57P01 admin shutdown, as on Neon scale-to-zero; 57P02 crash; 57P03
# starting up; 57014 statement timeout); 58 system error; 40001/40P01 conflicts still there after
# the unit of work's retries; 55P03 lock not available; 25P03 idle-in-transaction timeout; 25006
# read-only transaction (a failover left the pool on a standby).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57", "58")
_UNAVAILABLE_SQLSTATES = {"40001", "40P01", "55P03", "25P03", "25006"}


class Problem(Exception):
    """An error the client should see as problem+json; subclasses fix the status and type."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad Request"


class NotAuthenticated(Problem):
    status, slug, title = 401, "not-authenticated", "Unauthorized"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class TaskNotFound(Problem):
    status, slug, title = 404, "not-found", "Not Found"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "Precondition Failed"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Content Too Large"


class HeadersTooLarge(Problem):
    status, slug, title = 431, "headers-too-large", "Request Header Fields Too Large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(Problem):
    status, slug, title = 422, "validation-error", "Unprocessable Content"


class IdempotencyKeyReused(Problem):
    """The key already names a different request; replaying its response would be a lie."""

    status, slug, title = 422, "idempotency-key-reused", "Unprocessable Content"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too Many Requests"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def render(problem: Problem) -> JSONResponse:
    return problem_response(
        problem.status,
        problem.title,
        problem.detail,
        slug=problem.slug,
        headers=problem.headers,
        **problem.extra,
    )


_STATUS_TITLES = {
    400: ("bad-request", "Bad Request"),
    401: ("not-authenticated", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    406: ("not-acceptable", "Not Acceptable"),
    413: ("payload-too-large", "Content Too Large"),
    415: ("unsupported-media-type", "Unsupported Media Type"),
    422: ("validation-error", "Unprocessable Content"),
}


# The published bounds of a 422's `errors` (api/openapi.py): a body with thousands of unknown
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


def is_database_unavailable(exc: BaseException) -> bool:
    """True when the failure is the database's (down, restarting, overloaded), not the request's.

    Covers failures at any point of the transaction, COMMIT included: a commit whose answer was
    lost is reported as 503, never as success and never as 500.
    """
    if isinstance(exc, PoolTimeoutError | DisconnectionError | RetryTransaction):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(driver_error, psycopg.Error):
        return False
    sqlstate = driver_error.sqlstate
    if sqlstate is None:
        # No answer from the server: refused, reset, "server closed the connection
        # unexpectedly", timed out, or the connection was already closed.
        return isinstance(driver_error, psycopg.OperationalError | psycopg.InterfaceError)
    return sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate.startswith(
        _UNAVAILABLE_SQLSTATE_PREFIXES
    )


def install_error_handlers(app: FastAPI, retry_after_seconds: int) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return render(exc)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _STATUS_TITLES.get(exc.status_code, (None, "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = "No such resource."
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem_response(exc.status_code, title, detail, slug=slug, headers=headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return render(BadRequest("The request body is not valid JSON."))
        return render(
            ValidationFailed("The request does not match the schema.", errors=errors)
        )

    async def on_database(_: Request, exc: Exception) -> JSONResponse:
        metrics.record_database_error(exc, unavailable=is_database_unavailable(exc))
        if is_database_unavailable(exc):
            cause = getattr(exc, "orig", None) or exc
            # The driver's first line says which trouble it was ("server closed the connection
            # unexpectedly", "terminating connection due to administrator command", ...).
            log.warning(
                "database unavailable: %s: %s",
                type(cause).__name__,
                str(cause).strip().splitlines()[0][:200] if str(cause).strip() else "",
            )
            return render(
                ServiceUnavailable(
                    "The database is temporarily unavailable; retry shortly.",
                    headers={"Retry-After": str(retry_after_seconds)},
                )
            )
        log.exception("database error")
        return problem_response(500, "Internal Server Error", "An unexpected error occurred.")

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, "Internal Server Error", "An unexpected error occurred.")

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(PoolTimeoutError, on_database)
    app.add_exception_handler(DisconnectionError, on_database)
    app.add_exception_handler(psycopg.Error, on_database)
    app.add_exception_handler(RetryTransaction, on_database)
    app.add_exception_handler(Exception, on_unexpected)
