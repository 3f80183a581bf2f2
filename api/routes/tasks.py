"""Task routes under /api/{user_id}/tasks.

Each handler reads top to bottom: the verified caller (BearerAuthentication) and the path check
(TenantRoute) have already run; the handler opens one RLS transaction, runs its user-filtered
queries, commits, and only then builds the response.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import TypeAdapter
from sqlmodel import Session

from api.conditional import etag_for, if_match_allows
from api.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor
from api.deps import CurrentUser, DatabaseDep
from api.errors import PreconditionFailed, TaskNotFound
from api.idempotency import IdempotencyKeyHeader, create_once
from api.openapi import COMMON_STATUSES, problem_responses, success_headers
from api.routing import TenantRoute
from api.schemas import (
    PAGE_MAX,
    USER_ID_PATTERN,
    TaskCreate,
    TaskPage,
    TaskPatch,
    TaskPublic,
    TaskReplace,
)
from db import tasks
from db.models import USER_ID_MAX
from db.tasks import Position, SortOrder, StatusFilter, TaskRecord

router = APIRouter(
    prefix="/api/{user_id}/tasks",
    tags=["tasks"],
    route_class=TenantRoute,
    responses=problem_responses(*COMMON_STATUSES),
)

UserIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=USER_ID_MAX,
        pattern=USER_ID_PATTERN,
        description="The caller's user id; must equal the token's identity claim.",
        examples=["user_123"],
    ),
]
TaskIdPath = Annotated[
    uuid.UUID,
    Path(
        description="The task's id.",
        examples=["3fa85f64-5717-4562-b3fc-2c963f66afa6"],
        json_schema_extra={"maxLength": 36},
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description="Apply the change only if the task's current ETag is listed (or `*`).",
    ),
]

# Stateful clients (and fuzzers) chain a created task's id into the operations on it.
_LINKS_FROM_CREATED = {
    name: {
        "operationId": operation_id,
        "parameters": {"user_id": "$request.path.user_id", "task_id": "$response.body#/id"},
        "description": description,
    }
    for name, operation_id, description in (
        ("GetTask", "getTask", "Read the task just created."),
        ("ReplaceTask", "replaceTask", "Replace the task just created."),
        ("UpdateTask", "updateTask", "Change some fields of the task just created."),
        ("ToggleTaskCompleted", "toggleTaskCompleted", "Toggle the task just created."),
        ("DeleteTask", "deleteTask", "Delete the task just created."),
    )
}
# A task as returned, with its tag: the same `ETag` GET returns, ready for `If-Match`.
_TASK_RESPONSE = {"description": "The task.", **success_headers("ETag")}

_TASK = TypeAdapter(TaskPublic)
_TASKS = TypeAdapter(list[TaskPublic])
JSON = "application/json"


def _task_response(task: TaskRecord, status_code: int = 200, **headers: str) -> Response:
    body = _TASK.dump_json(_TASK.validate_python(task, from_attributes=True))
    return Response(
        body, status_code=status_code, media_type=JSON, headers={"ETag": etag_for(body), **headers}
    )


def _task_path(user_id: str, task_id: uuid.UUID) -> str:
    return f"/api/{quote(user_id, safe='')}/tasks/{task_id}"


def _require_match(session: Session, user: str, task_id: uuid.UUID, if_match: str | None) -> None:
    """With If-Match, lock the row and refuse the write unless the client saw its current state."""
    if if_match is None:
        return
    current = tasks.get_task(session, user, task_id, for_update=True)
    if current is None:
        raise TaskNotFound("No such task.")
    body = _TASK.dump_json(_TASK.validate_python(current, from_attributes=True))
    if not if_match_allows(if_match, etag_for(body)):
        raise PreconditionFailed("The task has changed since you read it; fetch it again.")


def _next_link(request: Request, sort: SortOrder, page: Sequence[TaskRecord]) -> str:
    last = page[-1]
    position = Position(key=getattr(last, sort.key), id=last.id)
    params = dict(request.query_params)
    params["cursor"] = encode_cursor(sort, position)
    return f'<{request.url.path}?{urlencode(params)}>; rel="next"'


@router.get(
    "",
    operation_id="listTasks",
    summary="List the caller's tasks",
    response_model=TaskPage,
    responses={
        200: {"description": "One page of tasks.", **success_headers(optional=("Link",))}
    },
)
def list_tasks(
    user_id: UserIdPath,
    user: CurrentUser,
    db: DatabaseDep,
    request: Request,
    status: Annotated[StatusFilter, Query(description="Which tasks to include.")] = (
        StatusFilter.all
    ),
    sort: Annotated[SortOrder, Query(description="Order; `-` means descending.")] = (
        SortOrder.created_desc
    ),
    limit: Annotated[
        int,
        Query(ge=1, le=PAGE_MAX, description="Page size.", json_schema_extra={"format": "int32"}),
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=1400,
            description="Opaque position from a previous page's `Link: rel=\"next\"`.",
        ),
    ] = None,
) -> Response:
    """Newest first by default. When more tasks follow, `Link` carries the next page's URL."""
    after = decode_cursor(sort, cursor) if cursor else None
    query = tasks.list_query(user, status=status, sort=sort, limit=limit + 1, after=after)
    rows: list[TaskRecord] = db.read(user, query)
    page = rows[:limit]
    body = _TASKS.dump_json(_TASKS.validate_python(page, from_attributes=True))
    response = Response(body, media_type=JSON)
    if len(rows) > limit:
        response.headers["Link"] = _next_link(request, sort, page)
    return response


@router.post(
    "",
    status_code=201,
    operation_id="createTask",
    summary="Create a task",
    response_model=TaskPublic,
    responses={
        201: {
            "description": "The task was created.",
            **success_headers("Location", "ETag", optional=("Idempotent-Replayed",)),
            "links": _LINKS_FROM_CREATED,
        },
        **problem_responses(400, 415),
    },
)
def create_task(
    user_id: UserIdPath,
    body: TaskCreate,
    user: CurrentUser,
    db: DatabaseDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Unknown fields (such as `user_id` or `id`) are refused with 422, never ignored.

    With `Idempotency-Key`, a retry of the same request returns the first response.
    """

    def create(session: Session) -> Response:
        task = tasks.create_task(session, user, **body.model_dump())
        return _task_response(task, 201, Location=_task_path(user, task.id))

    if idempotency_key is None:
        return db.run(user, create)
    return create_once(db, user, idempotency_key, body, create)


@router.get(
    "/{task_id}",
    operation_id="getTask",
    summary="Get one task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(404)},
)
def get_task(
    user_id: UserIdPath, task_id: TaskIdPath, user: CurrentUser, db: DatabaseDep
) -> Response:
    """Another user's task and a missing task are the same 404."""
    found: list[TaskRecord] = db.read(user, tasks.get_query(user, task_id))
    if not found:
        raise TaskNotFound("No such task.")
    return _task_response(found[0])


@router.put(
    "/{task_id}",
    operation_id="replaceTask",
    summary="Replace a task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(400, 404, 412, 415)},
)
def replace_task(
    user_id: UserIdPath,
    task_id: TaskIdPath,
    body: TaskReplace,
    user: CurrentUser,
    db: DatabaseDep,
    if_match: IfMatch = None,
) -> Response:
    """Omitted optional fields go back to their defaults."""

    def replace(session: Session) -> TaskRecord:
        _require_match(session, user, task_id, if_match)
        task = tasks.update_task(session, user, task_id, body.model_dump())
        if task is None:
            raise TaskNotFound("No such task.")
        return task

    return _task_response(db.run(user, replace))


@router.patch(
    "/{task_id}",
    operation_id="updateTask",
    summary="Change some fields of a task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(400, 404, 412, 415)},
)
def update_task(
    user_id: UserIdPath,
    task_id: TaskIdPath,
    body: TaskPatch,
    user: CurrentUser,
    db: DatabaseDep,
    if_match: IfMatch = None,
) -> Response:
    """Only the fields sent change; `null` is accepted for `description` alone."""
    changes = body.changes()

    def patch(session: Session) -> TaskRecord:
        _require_match(session, user, task_id, if_match)
        if changes:
            task = tasks.update_task(session, user, task_id, changes)
        else:
            task = tasks.get_task(session, user, task_id)
        if task is None:
            raise TaskNotFound("No such task.")
        return task

    return _task_response(db.run(user, patch))


@router.patch(
    "/{task_id}/complete",
    operation_id="toggleTaskCompleted",
    summary="Toggle a task's completed flag",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(404, 412)},
)
def toggle_completed(
    user_id: UserIdPath,
    task_id: TaskIdPath,
    user: CurrentUser,
    db: DatabaseDep,
    if_match: IfMatch = None,
) -> Response:
    """Flips `completed`; `If-Match` makes the toggle conditional on the state the caller saw."""

    def toggle(session: Session) -> TaskRecord:
        _require_match(session, user, task_id, if_match)
        task = tasks.toggle_completed(session, user, task_id)
        if task is None:
            raise TaskNotFound("No such task.")
        return task

    return _task_response(db.run(user, toggle))


@router.delete(
    "/{task_id}",
    status_code=204,
    operation_id="deleteTask",
    summary="Delete a task",
    response_class=Response,
    responses={204: {"description": "The task was deleted."}, **problem_responses(404, 412)},
)
def delete_task(
    user_id: UserIdPath,
    task_id: TaskIdPath,
    user: CurrentUser,
    db: DatabaseDep,
    if_match: IfMatch = None,
) -> Response:
    """Gone for good; a second delete, like another user's, is 404."""

    def delete(session: Session) -> None:
        _require_match(session, user, task_id, if_match)
        if not tasks.delete_task(session, user, task_id):
            raise TaskNotFound("No such task.")

    db.run(user, delete)
    return Response(status_code=204)
