"""Liveness and readiness probes for load balancers and orchestrators.

Both answer anyone, so they say only "ok" or "ready": which schema revision the database is at
is for operators (`tasks-api migrate` prints it), not for whoever can reach the listener.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.http.openapi import PROBE_STATUSES, problem_responses
from api.problems import ServiceUnavailable, render
from db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])

# Probes are called by infrastructure without credentials, and the rate limiter leaves them alone.
_PUBLIC: dict[str, Any] = {"security": []}
_LIVE = {
    "type": "object",
    "properties": {"status": {"const": "ok"}},
    "required": ["status"],
    "additionalProperties": False,
}
_READY = {
    "type": "object",
    "properties": {"status": {"const": "ready"}},
    "required": ["status"],
    "additionalProperties": False,
}


def _json(description: str, schema: dict[str, Any], example: dict[str, str]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


@router.get(
    "/healthz",
    operation_id="healthz",
    summary="Liveness: the process answers",
    openapi_extra=_PUBLIC,
    responses={
        200: _json("The process is alive.", _LIVE, {"status": "ok"}),
        **problem_responses(*PROBE_STATUSES),
    },
)
def healthz() -> JSONResponse:
    """Never touches the database: a database outage must not get healthy processes killed."""
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: database reachable and migrated",
    openapi_extra=_PUBLIC,
    responses={
        200: _json(
            "The database answers and is at the current schema.",
            _READY,
            {"status": "ready"},
        ),
        **problem_responses(*PROBE_STATUSES, 503),
    },
)
def readyz(request: Request) -> Response:
    """Not ready (503) while the database is unreachable or behind the code's migrations."""
    retry_after = str(request.app.state.settings.retry_after_seconds)
    try:
        revision = current_revision(request.app.state.unit_of_work.engine)
    except Exception:
        return render(
            ServiceUnavailable("The database is unreachable.", headers={"Retry-After": retry_after})
        )
    if revision != head_revision():
        return render(
            ServiceUnavailable(
                "The database is not at the current schema; run `tasks-api migrate`.",
                headers={"Retry-After": retry_after},
            )
        )
    return JSONResponse({"status": "ready"})
