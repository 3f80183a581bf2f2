"""Task routes under /api/{user_id}/tasks.

Each handler reads top to bottom: the verified caller (BearerAuthentication) and the path check
(TenantRoute) have already run; the handler runs its user-filtered queries in one unit of work,
gets records back, and only then builds the response.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import TypeAdapter
from sqlmodel import Session

from api.deps import CurrentCaller, UnitOfWorkDep
from api.http.openapi import COMMON_STATUSES, problem_responses, success_headers
from api.http.tenant_route import TenantRoute
from api.paths import TENANT_PREFIX, task_path, tenant_path
from api.problems import PreconditionFailed, TaskNotFound
from api.tasks.conditional import etag_for, if_match_allows
from api.tasks.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor
from api.tasks.idempotency import Created, IdempotencyKeyHeader, create_once
from api.tasks.schemas import PAGE_MAX, TaskCreate, TaskPage, TaskPatch, TaskPublic, TaskReplace
from db import tasks
from db.tasks import DocumentRow, PageRow, Position, SortOrder, StatusFilter, TaskRecord

router = APIRouter(
    prefix=f"{TENANT_PREFIX}/tasks",
    tags=["tasks"],
    route_class=TenantRoute,
    responses=problem_responses(*COMMON_STATUSES),
)

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
JSON = "application/json"
Change = Callable[[Session], TaskRecord | None]


def _task_json(task: TaskRecord) -> bytes:
    return _TASK.dump_json(_TASK.validate_python(task, from_attributes=True))


def _task_response(body: bytes, status_code: int = 200, **headers: str) -> Response:
    return Response(
        body, status_code=status_code, media_type=JSON, headers={"ETag": etag_for(body), **headers}
    )


def _require_match(session: Session, user: str, task_id: uuid.UUID, if_match: str | None) -> None:
    """With If-Match, lock the row and refuse the write unless the client saw its current state."""
    if if_match is None:
        return
    current = tasks.get_task(session, user, task_id, for_update=True)
    if current is None:
        raise TaskNotFound("No such task.")
    if not if_match_allows(if_match, etag_for(_task_json(current))):
        raise PreconditionFailed("The task has changed since you read it; fetch it again.")


def _change_task(
    db: UnitOfWorkDep, user: str, task_id: uuid.UUID, if_match: str | None, change: Change
) -> TaskRecord:
    """The shape every write to one task shares: the If-Match check, the change, 404 if none."""

    def work(session: Session) -> TaskRecord:
        _require_match(session, user, task_id, if_match)
        task = change(session)
        if task is None:
            raise TaskNotFound("No such task.")
        return task

    return db.run(user, work)


def _next_link(request: Request, user: str, sort: SortOrder, position: Position) -> str:
    """The next page's link, from the percent-encoded path: any user id fits in the header."""
    params = dict(request.query_params)
    params["cursor"] = encode_cursor(sort, position)
    return f'<{tenant_path(user)}/tasks?{urlencode(params)}>; rel="next"'


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
    caller: CurrentCaller,
    db: UnitOfWorkDep,
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
    user = caller.user_id
    after = decode_cursor(sort, cursor) if cursor else None
    query = tasks.list_query(user, status=status, sort=sort, limit=limit, after=after)
    page: PageRow = db.read(user, query)[0]
    # PostgreSQL wrote the JSON (db/tasks.py): its bytes go out untouched.
    response = Response(page.body.encode(), media_type=JSON)
    if page.fetched > limit and page.last_key is not None and page.last_id is not None:
        position = Position(key=page.last_key, id=page.last_id)
        response.headers["Link"] = _next_link(request, user, sort, position)
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
    body: TaskCreate,
    caller: CurrentCaller,
    db: UnitOfWorkDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Unknown fields (such as `user_id` or `id`) are refused with 422, never ignored.

    With `Idempotency-Key`, a retry of the same request returns the first response.
    """
    user = caller.user_id

    def create(session: Session) -> Created:
        task = tasks.create_task(session, user, **body.model_dump())
        return Created(_task_json(task), task_path(user, task.id))

    if idempotency_key is None:
        created = db.run(user, create)
    else:
        created = create_once(db, user, idempotency_key, body, create)
    return _task_response(created.body, 201, Location=created.location, **created.headers())


@router.get(
    "/{task_id}",
    operation_id="getTask",
    summary="Get one task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(404)},
)
def get_task(task_id: TaskIdPath, caller: CurrentCaller, db: UnitOfWorkDep) -> Response:
    """Another user's task and a missing task are the same 404."""
    found: list[DocumentRow] = db.read(caller.user_id, tasks.get_query(caller.user_id, task_id))
    if not found:
        raise TaskNotFound("No such task.")
    # PostgreSQL wrote the document (db/tasks.py); the ETag is computed from these same bytes.
    return _task_response(found[0].body.encode())


@router.put(
    "/{task_id}",
    operation_id="replaceTask",
    summary="Replace a task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(400, 404, 412, 415)},
)
def replace_task(
    task_id: TaskIdPath,
    body: TaskReplace,
    caller: CurrentCaller,
    db: UnitOfWorkDep,
    if_match: IfMatch = None,
) -> Response:
    """Omitted optional fields go back to their defaults."""
    user = caller.user_id

    def replace(session: Session) -> TaskRecord | None:
        return tasks.update_task(session, user, task_id, body.model_dump())

    return _task_response(_task_json(_change_task(db, user, task_id, if_match, replace)))


@router.patch(
    "/{task_id}",
    operation_id="updateTask",
    summary="Change some fields of a task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(400, 404, 412, 415)},
)
def update_task(
    task_id: TaskIdPath,
    body: TaskPatch,
    caller: CurrentCaller,
    db: UnitOfWorkDep,
    if_match: IfMatch = None,
) -> Response:
    """Only the fields sent change; `null` is accepted for `description` alone."""
    user = caller.user_id
    changes = body.changes()

    def patch(session: Session) -> TaskRecord | None:
        if changes:
            return tasks.update_task(session, user, task_id, changes)
        return tasks.get_task(session, user, task_id)

    return _task_response(_task_json(_change_task(db, user, task_id, if_match, patch)))


@router.patch(
    "/{task_id}/complete",
    operation_id="toggleTaskCompleted",
    summary="Toggle a task's completed flag",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **problem_responses(404, 412)},
)
def toggle_completed(
    task_id: TaskIdPath, caller: CurrentCaller, db: UnitOfWorkDep, if_match: IfMatch = None
) -> Response:
    """Flips `completed`; `If-Match` makes the toggle conditional on the state the caller saw."""
    user = caller.user_id

    def toggle(session: Session) -> TaskRecord | None:
        return tasks.toggle_completed(session, user, task_id)

    return _task_response(_task_json(_change_task(db, user, task_id, if_match, toggle)))


@router.delete(
    "/{task_id}",
    status_code=204,
    operation_id="deleteTask",
    summary="Delete a task",
    response_class=Response,
    responses={204: {"description": "The task was deleted."}, **problem_responses(404, 412)},
)
def delete_task(
    task_id: TaskIdPath, caller: CurrentCaller, db: UnitOfWorkDep, if_match: IfMatch = None
) -> Response:
    """Gone for good; a second delete, like another user's, is 404."""
    user = caller.user_id

    def delete(session: Session) -> None:
        _require_match(session, user, task_id, if_match)
        if not tasks.delete_task(session, user, task_id):
            raise TaskNotFound("No such task.")

    db.run(user, delete)
    return Response(status_code=204)
