"""The problem+json schema and the error responses each operation declares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.errors import PROBLEM_JSON


class FieldError(BaseModel):
    location: str = Field(description="`body`, `query`, `path` or `header`.")
    field: str = Field(description="Dotted path of the offending field within its location.")
    message: str
    type: str = Field(description="A machine-readable error code.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI identifying the problem type.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[FieldError] | None = Field(default=None, description="Present on 422.")


_DESCRIPTIONS = {
    400: "Malformed request (for example, a body that is not JSON).",
    401: "Missing, invalid or expired bearer token.",
    403: "The path's user is not the token's user.",
    404: "No such task for this user (missing and foreign tasks look the same).",
    405: "Method not allowed on this path.",
    412: "If-Match did not match the task's current ETag.",
    413: "Request body too large.",
    415: "The body is not application/json.",
    422: "The request does not match the schema.",
    429: "Too many requests.",
    503: "The database is temporarily unavailable.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge."}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": ProblemDetails,
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }
