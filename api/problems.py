"""The problem catalogue: every RFC 9457 problem the API answers, in one table.

Each entry fixes a status's slug (`type` is `urn:tasks-api:problem:<slug>`), its title and the
description the OpenAPI document publishes; the exception classes, the error handlers and the
document all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:tasks-api:problem:"


@dataclass(frozen=True)
class ProblemType:
    status: int
    slug: str
    title: str
    # What the OpenAPI document says this status means on an operation that declares it.
    description: str = ""


CATALOGUE: tuple[ProblemType, ...] = (
    ProblemType(400, "bad-request", "Bad Request",
                "Malformed request: the body is not valid JSON."),
    ProblemType(401, "not-authenticated", "Unauthorized",
                "Missing, invalid or expired bearer token."),
    ProblemType(403, "forbidden", "Forbidden", "The path's user is not the token's user."),
    ProblemType(404, "not-found", "Not Found",
                "No such task for this user (a missing task and another user's task look the "
                "same)."),
    ProblemType(405, "method-not-allowed", "Method Not Allowed"),
    ProblemType(406, "not-acceptable", "Not Acceptable"),
    ProblemType(412, "precondition-failed", "Precondition Failed",
                "`If-Match` names no current `ETag`, or `If-None-Match` names the task's "
                "(or is `*`); fetch the task again."),
    ProblemType(413, "payload-too-large", "Content Too Large",
                "The request body is larger than the configured limit (`MAX_BODY_BYTES`)."),
    ProblemType(415, "unsupported-media-type", "Unsupported Media Type",
                "The body is not `application/json`."),
    ProblemType(422, "validation-error", "Unprocessable Content",
                "The request does not match the schema; `errors` names each offending field."),
    ProblemType(429, "rate-limited", "Too Many Requests",
                "The caller's request budget is spent; retry after `Retry-After` seconds."),
    ProblemType(431, "headers-too-large", "Request Header Fields Too Large",
                "More than 100 request headers, or more bytes of them than `MAX_HEADER_BYTES`."),
    ProblemType(500, "internal-error", "Internal Server Error",
                "An unexpected fault on the server (a bug, never the caller's input)."),
    ProblemType(503, "service-unavailable", "Service Unavailable",
                "The database is temporarily unavailable; retry after `Retry-After` seconds."),
)
BY_STATUS = {kind.status: kind for kind in CATALOGUE}
# A second kind of 422: the key already names a different request.
IDEMPOTENCY_KEY_REUSED = ProblemType(422, "idempotency-key-reused", "Unprocessable Content")


class Problem(Exception):
    """An error the client should see as problem+json; subclasses name their catalogue entry."""

    kind: ClassVar[ProblemType] = BY_STATUS[500]

    def __init__(
        self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def status(self) -> int:
        return self.kind.status


class BadRequest(Problem):
    kind = BY_STATUS[400]


class NotAuthenticated(Problem):
    kind = BY_STATUS[401]


class Forbidden(Problem):
    kind = BY_STATUS[403]


class TaskNotFound(Problem):
    kind = BY_STATUS[404]


class PreconditionFailed(Problem):
    kind = BY_STATUS[412]


class PayloadTooLarge(Problem):
    kind = BY_STATUS[413]


class UnsupportedMediaType(Problem):
    kind = BY_STATUS[415]


class ValidationFailed(Problem):
    kind = BY_STATUS[422]


class IdempotencyKeyReused(Problem):
    """The key already names a different request; replaying its response would be a lie."""

    kind = IDEMPOTENCY_KEY_REUSED


class RateLimited(Problem):
    kind = BY_STATUS[429]


class HeadersTooLarge(Problem):
    kind = BY_STATUS[431]


class ServiceUnavailable(Problem):
    kind = BY_STATUS[503]


def problem_response(
    kind: ProblemType,
    detail: str,
    *,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem+json response for `kind` (`status` only for a status with no entry)."""
    code = status or kind.status
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}{kind.slug}" if kind.slug else "about:blank",
        "title": kind.title,
        "status": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=code, headers=headers, media_type=PROBLEM_JSON)


def for_status(status: int) -> ProblemType:
    """The catalogue entry for `status`; a status with none is `about:blank` "Error"."""
    return BY_STATUS.get(status) or ProblemType(status, "", "Error")


def render(problem: Problem) -> JSONResponse:
    return problem_response(
        problem.kind, problem.detail, headers=problem.headers, **problem.extra
    )


def internal_error() -> JSONResponse:
    return problem_response(BY_STATUS[500], "An unexpected error occurred.")


# How a refusal reaches a WebSocket handshake (as well as plain HTTP), see api/http/websocket.py.
DENIAL_EXTENSION = "websocket.http.response"
# RFC 6455 close code 1008: the handshake violates the server's policy.
POLICY_VIOLATION = 1008


async def refuse(problem: Problem, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer `problem` as problem+json, over HTTP or as a WebSocket handshake's denial."""
    if scope["type"] == "websocket" and DENIAL_EXTENSION not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
        return
    await render(problem)(scope, receive, send)
