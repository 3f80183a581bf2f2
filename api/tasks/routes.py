"""Task routes under /api/{user_id}/tasks.

Each handler reads top to bottom: the verified caller (BearerAuthentication) and the path check
(TenantRoute) have already run; the handler runs its user-filtered queries in one unit of work,
gets records back, and only then builds the response.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import TypeAdapter
from sqlmodel import Session

from api.deps import CurrentCaller, UnitOfWorkDep
from api.http.consistency import HEADER as CONSISTENCY_TOKEN
from api.http.consistency import TokenCodec, Tokens
from api.http.openapi import COMMON_STATUSES, problem_responses, success_headers
from api.http.tenant_route import TenantRoute
from api.paths import TENANT_PREFIX, task_path, tenant_path
from api.problems import PreconditionFailed, TaskNotFound
from api.tasks.conditional import (
    etag_for,
    if_match_allows,
    if_match_fields,
    if_none_match_fields,
    if_none_match_matches,
)
from api.tasks.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor
from api.tasks.idempotency import Created, IdempotencyKeyHeader, create_once
from api.tasks.reads import TaskRead
from api.tasks.schemas import PAGE_MAX, TaskCreate, TaskPage, TaskPatch, TaskPublic, TaskReplace
from db import tasks
from db.tasks import DocumentRow, PageRow, Position, SortOrder, StatusFilter, TaskRecord
from db.unit_of_work import Committed

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
IfMatch = Annotated[list[str] | None, Depends(if_match_fields)]
IfNoneMatch = Annotated[list[str] | None, Depends(if_none_match_fields)]

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
# A write's answer also says where it committed, for the reads that must see it.
_CHANGED_TASK_RESPONSE = {"description": "The task.", **success_headers("ETag", CONSISTENCY_TOKEN)}
# A conditional read whose `If-None-Match` names the current tag: no body, the tag again.
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not modified: `If-None-Match` names the current `ETag`.",
        **success_headers("ETag"),
    }
}

_TASK = TypeAdapter(TaskPublic)
JSON = "application/json"
Change = Callable[[Session], TaskRecord | None]


def _task_json(task: TaskRecord) -> bytes:
    return _TASK.dump_json(_TASK.validate_python(task, from_attributes=True))


def _task_response(body: bytes, status_code: int = 200, **headers: str) -> Response:
    return Response(
        body, status_code=status_code, media_type=JSON, headers={"ETag": etag_for(body), **headers}
    )


def _not_modified(body: bytes, if_none_match: list[str] | None) -> Response | None:
    """304 with the tag when the client's `If-None-Match` names the current representation."""
    etag = etag_for(body)
    if if_none_match is not None and if_none_match_matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return None


@dataclass(frozen=True)
class Preconditions:
    """A write's If-Match and If-None-Match, each None when the client did not send it."""

    if_match: list[str] | None = None
    if_none_match: list[str] | None = None


def _require_match(
    session: Session, user: str, task_id: uuid.UUID, conditions: Preconditions
) -> None:
    """With a precondition, lock the row and refuse the write (412) unless it holds: If-Match
    first, then If-None-Match (RFC 9110, section 13.2.2)."""
    if conditions.if_match is None and conditions.if_none_match is None:
        return
    current = tasks.get_task(session, user, task_id, for_update=True)
    if current is None:
        if conditions.if_match is not None:
            raise TaskNotFound("No such task.")
        return  # If-None-Match holds for a task that does not exist; the write finds none.
    etag = etag_for(_task_json(current))
    if conditions.if_match is not None and not if_match_allows(conditions.if_match, etag):
        raise PreconditionFailed("The task has changed since you read it; fetch it again.")
    if conditions.if_none_match is not None and if_none_match_matches(
        conditions.if_none_match, etag
    ):
        raise PreconditionFailed("The task exists in a state If-None-Match excludes.")


def _change_task(
    db: UnitOfWorkDep, user: str, task_id: uuid.UUID, conditions: Preconditions, change: Change
) -> Committed[TaskRecord]:
    """The shape every write to one task shares: the preconditions, the change, 404 if none."""

    def work(session: Session) -> TaskRecord:
        _require_match(session, user, task_id, conditions)
        task = change(session)
        if task is None:
            raise TaskNotFound("No such task.")
        return task

    return db.write(user, work)


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
        200: {
            "description": "One page of tasks.",
            **success_headers("ETag", optional=("Link",)),
        },
        **_NOT_MODIFIED,
        **problem_responses(400),
    },
)
async def list_tasks(
    read: TaskRead,
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
    user = read.user
    after = decode_cursor(sort, cursor) if cursor else None
    query = tasks.list_query(user, status=status, sort=sort, limit=limit, after=after)
    page: PageRow = (await read.rows(query))[0]
    # PostgreSQL wrote the JSON (db/tasks.py): its bytes go out untouched.
    body = page.body.encode()
    headers: dict[str, str] = {}
    if page.fetched > limit and page.last_key is not None and page.last_id is not None:
        position = Position(key=page.last_key, id=page.last_id)
        headers["Link"] = _next_link(request, user, sort, position)
    # The page is its tasks and whether another page follows: a page that gained a successor
    # is a new representation, even with the same tasks on it.
    tagged = body + b"\n" + headers["Link"].encode() if "Link" in headers else body
    if (unchanged := _not_modified(tagged, read.if_none_match)) is not None:
        return unchanged
    return Response(body, media_type=JSON, headers={"ETag": etag_for(tagged), **headers})


@router.post(
    "",
    status_code=201,
    operation_id="createTask",
    summary="Create a task",
    response_model=TaskPublic,
    responses={
        201: {
            "description": "The task was created.",
            **success_headers(
                "Location", "ETag", CONSISTENCY_TOKEN, optional=("Idempotent-Replayed",)
            ),
            "links": _LINKS_FROM_CREATED,
        },
        **problem_responses(400, 415),
    },
)
def create_task(
    body: TaskCreate,
    caller: CurrentCaller,
    db: UnitOfWorkDep,
    tokens: Tokens,
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
        committed = db.write(user, create)
    else:
        committed = create_once(db, user, idempotency_key, body, create)
    created = committed.value
    headers = {CONSISTENCY_TOKEN: tokens.encode(committed.lsn), **created.headers()}
    return _task_response(created.body, 201, Location=created.location, **headers)


@router.get(
    "/{task_id}",
    operation_id="getTask",
    summary="Get one task",
    response_model=TaskPublic,
    responses={200: _TASK_RESPONSE, **_NOT_MODIFIED, **problem_responses(400, 404)},
)
async def get_task(task_id: TaskIdPath, read: TaskRead) -> Response:
    """Another user's task and a missing task are the same 404."""
    found: list[DocumentRow] = await read.rows(tasks.get_query(read.user, task_id))
    if not found:
        raise TaskNotFound("No such task.")
    # PostgreSQL wrote the document (db/tasks.py); the ETag is computed from these same bytes.
    body = found[0].body.encode()
    return _not_modified(body, read.if_none_match) or _task_response(body)


@dataclass(frozen=True)
class OneTaskWrite:
    """What every write to one task takes: the caller, the unit of work, its preconditions and
    the codec that turns where it committed into a `Consistency-Token`."""

    user: str
    db: UnitOfWorkDep
    tokens: TokenCodec
    conditions: Preconditions

    def change(self, task_id: uuid.UUID, change: Change) -> Response:
        """Apply `change` under the preconditions; the task as now stored, 404 if none."""
        changed = _change_task(self.db, self.user, task_id, self.conditions, change)
        token = self.tokens.encode(changed.lsn)
        return _task_response(_task_json(changed.value), 200, **{CONSISTENCY_TOKEN: token})


async def one_task_write(
    caller: CurrentCaller,
    db: UnitOfWorkDep,
    tokens: Tokens,
    if_match: IfMatch,
    if_none_match: IfNoneMatch,
) -> OneTaskWrite:
    return OneTaskWrite(caller.user_id, db, tokens, Preconditions(if_match, if_none_match))


TaskWrite = Annotated[OneTaskWrite, Depends(one_task_write)]


# PUT and PATCH answer alike: the task as now stored, or why the body or precondition failed.
_CHANGE_BY_BODY: dict[str, Any] = {
    "response_model": TaskPublic,
    "responses": {200: _CHANGED_TASK_RESPONSE, **problem_responses(400, 404, 412, 415)},
}


@router.put("/{task_id}", operation_id="replaceTask", summary="Replace a task", **_CHANGE_BY_BODY)
def replace_task(task_id: TaskIdPath, body: TaskReplace, write: TaskWrite) -> Response:
    """Omitted optional fields go back to their defaults."""

    def replace(session: Session) -> TaskRecord | None:
        return tasks.update_task(session, write.user, task_id, body.model_dump())

    return write.change(task_id, replace)


@router.patch(
    "/{task_id}", operation_id="updateTask", summary="Change some fields of a task",
    **_CHANGE_BY_BODY,
)
def update_task(task_id: TaskIdPath, body: TaskPatch, write: TaskWrite) -> Response:
    """Only the fields sent change; `null` is accepted for `description` alone."""
    changes = body.changes()

    def patch(session: Session) -> TaskRecord | None:
        if changes:
            return tasks.update_task(session, write.user, task_id, changes)
        return tasks.get_task(session, write.user, task_id)

    return write.change(task_id, patch)


@router.patch(
    "/{task_id}/complete",
    operation_id="toggleTaskCompleted",
    summary="Toggle a task's completed flag",
    response_model=TaskPublic,
    responses={200: _CHANGED_TASK_RESPONSE, **problem_responses(404, 412)},
)
def toggle_completed(task_id: TaskIdPath, write: TaskWrite) -> Response:
    """Flips `completed`; `If-Match` makes the toggle conditional on the state the caller saw."""
    return write.change(
        task_id, lambda session: tasks.toggle_completed(session, write.user, task_id)
    )


@router.delete(
    "/{task_id}",
    status_code=204,
    operation_id="deleteTask",
    summary="Delete a task",
    response_class=Response,
    responses={
        204: {"description": "The task was deleted.", **success_headers(CONSISTENCY_TOKEN)},
        **problem_responses(404, 412),
    },
)
def delete_task(task_id: TaskIdPath, write: TaskWrite) -> Response:
    """Gone for good; a second delete, like another user's, is 404."""

    def delete(session: Session) -> None:
        _require_match(session, write.user, task_id, write.conditions)
        if not tasks.delete_task(session, write.user, task_id):
            raise TaskNotFound("No such task.")

    deleted = write.db.write(write.user, delete)
    return Response(status_code=204, headers={CONSISTENCY_TOKEN: write.tokens.encode(deleted.lsn)})
