"""The queries the handlers issue. Every one filters by `user_id` itself.

Row-level security already limits each transaction to the caller's rows; these filters are the
second, independent layer (SPEC.md, "The one rule"): either layer alone keeps tenants apart.

The queries are SQLAlchemy Core over the SQLModel table and return plain rows, not ORM objects:
building a tracked `Task` per row was a fifth of a list request's CPU (bench/, docs/performance.md)
and nothing here needs the identity map. The SQL sent is the same.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlmodel import Session

from db.models import Task
from db.unit_of_work import Query

TASK: Table = Task.__table__  # type: ignore[attr-defined]


class TaskRecord(Protocol):
    """A task row as the queries return it (attribute access, like the model)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def user_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def completed(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class StatusFilter(StrEnum):
    all = "all"
    pending = "pending"
    completed = "completed"


class SortOrder(StrEnum):
    created_asc = "created"
    created_desc = "-created"
    title_asc = "title"
    title_desc = "-title"
    updated_asc = "updated"
    updated_desc = "-updated"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def key(self) -> str:
        return {"created": "created_at", "title": "title", "updated": "updated_at"}[
            self.value.lstrip("-")
        ]


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: the sort key's value and the id that breaks ties."""

    key: datetime | str
    id: uuid.UUID


def _after(sort: SortOrder) -> ColumnElement[bool]:
    # The id tie-break runs opposite to the key so that (user_id, created_at DESC, id) serves
    # the default order forwards and `created` backwards.
    key = TASK.c[sort.key]
    task_id = TASK.c.id
    after_key = bindparam("after_key", type_=key.type)
    after_id = bindparam("after_id", type_=task_id.type)
    if sort.descending:
        return or_(key < after_key, and_(key == after_key, task_id > after_id))
    return or_(key > after_key, and_(key == after_key, task_id < after_id))


@lru_cache(maxsize=64)
def _list_sql(status: StatusFilter, sort: SortOrder, paged: bool) -> str:
    """The list statement for one (status, sort, cursor or not) shape, compiled once."""
    key = TASK.c[sort.key]
    query = select(TASK).where(TASK.c.user_id == bindparam("user_id", type_=TASK.c.user_id.type))
    if status is StatusFilter.pending:
        query = query.where(TASK.c.completed.is_(False))
    elif status is StatusFilter.completed:
        query = query.where(TASK.c.completed.is_(True))
    if paged:
        query = query.where(_after(sort))
    if sort.descending:
        query = query.order_by(key.desc(), TASK.c.id.asc())
    else:
        query = query.order_by(key.asc(), TASK.c.id.desc())
    return _compiled(query.limit(bindparam("limit", type_=Integer)))


def list_query(
    user_id: str,
    *,
    status: StatusFilter,
    sort: SortOrder,
    limit: int,
    after: Position | None = None,
) -> Query:
    """One page of the caller's tasks, for `UnitOfWork.read` (rows follow TaskRecord)."""
    params: dict[str, Any] = {"user_id": user_id, "limit": limit}
    if after is not None:
        params |= {"after_key": after.key, "after_id": after.id}
    return Query(_list_sql(status, sort, after is not None), params)


_GET_SQL_SHAPE = select(TASK).where(
    TASK.c.id == bindparam("task_id", type_=TASK.c.id.type),
    TASK.c.user_id == bindparam("user_id", type_=TASK.c.user_id.type),
)


def get_query(user_id: str, task_id: uuid.UUID) -> Query:
    """One of the caller's tasks (no row when it is missing or someone else's)."""
    return Query(_GET_SQL, {"task_id": task_id, "user_id": user_id})


def _compiled(statement: Select[Any]) -> str:
    return str(statement.compile(dialect=_DIALECT))


_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
_GET_SQL = _compiled(_GET_SQL_SHAPE)


def get_task(
    session: Session, user_id: str, task_id: uuid.UUID, *, for_update: bool = False
) -> TaskRecord | None:
    query = select(TASK).where(TASK.c.id == task_id, TASK.c.user_id == user_id)
    if for_update:
        query = query.with_for_update()
    return cast(TaskRecord | None, session.execute(query).one_or_none())


def create_task(
    session: Session, user_id: str, *, title: str, description: str | None, completed: bool
) -> TaskRecord:
    statement = (
        insert(TASK)
        .values(user_id=user_id, title=title, description=description, completed=completed)
        .returning(*TASK.c)
    )
    return cast(TaskRecord, session.execute(statement).one())


def update_task(
    session: Session, user_id: str, task_id: uuid.UUID, values: dict[str, Any]
) -> TaskRecord | None:
    statement = (
        update(TASK)
        .where(TASK.c.id == task_id, TASK.c.user_id == user_id)
        .values(**values)
        .returning(*TASK.c)
    )
    return cast(TaskRecord | None, session.execute(statement).one_or_none())


def toggle_completed(session: Session, user_id: str, task_id: uuid.UUID) -> TaskRecord | None:
    return update_task(session, user_id, task_id, {"completed": ~TASK.c.completed})


def delete_task(session: Session, user_id: str, task_id: uuid.UUID) -> bool:
    statement = (
        delete(TASK).where(TASK.c.id == task_id, TASK.c.user_id == user_id).returning(TASK.c.id)
    )
    return session.execute(statement).first() is not None
