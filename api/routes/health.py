"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import ServiceUnavailable, render
from db.migrate import head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness: the process answers")
def healthz() -> JSONResponse:
    """Never touches the database: a database outage must not get healthy processes killed."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", operation_id="readyz", summary="Readiness: database reachable and migrated")
def readyz(request: Request) -> Response:
    retry_after = str(request.app.state.settings.retry_after_seconds)
    try:
        with request.app.state.database.engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:
        return render(
            ServiceUnavailable("The database is unreachable.", headers={"Retry-After": retry_after})
        )
    if revision != head_revision():
        return render(
            ServiceUnavailable(
                f"The database is at revision {revision}, not {head_revision()}; "
                "run `tasks-api migrate`.",
                headers={"Retry-After": retry_after},
            )
        )
    return JSONResponse({"status": "ready", "revision": revision})
