"""The framework's floor: the service's own stack answering a constant list, no database.

`create_app()` is the real application (every middleware, the JWT check, the access log and metrics)
with one extra route under /api/ that returns a fixed 50-task body, as long as a list page, from an
`async def` handler as list and get are (no thread-pool hop). Served with the same server and flags
as `tasks-api serve`, it is what the service would cost if PostgreSQL and the driver took no time at
all: bench/run.py prints it as its own row, next to list and get.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import FastAPI, Response
from pydantic import TypeAdapter

from api import app as service
from api.tasks.schemas import TaskPublic

PATH = "/api/{user_id}/constant"


def _page() -> bytes:
    now = datetime.now(UTC)
    tasks = [
        TaskPublic(
            id=uuid.uuid4(),
            user_id="1",
            title=f"seeded task {n}",
            description=f"a seeded description for task {n}" if n % 3 == 0 else None,
            completed=n % 2 == 0,
            created_at=now,
            updated_at=now,
        )
        for n in range(1, 51)
    ]
    return TypeAdapter(list[TaskPublic]).dump_json(tasks)


def create_app() -> FastAPI:
    app = service.create_app()
    body = _page()

    async def constant(user_id: str) -> Response:
        return Response(body, media_type="application/json")

    app.add_api_route(PATH, constant, methods=["GET"], include_in_schema=False)
    return app
