"""The queries the handlers issue. Every one filters by `user_id` itself.

Row-level security already limits each transaction to the caller's rows; these filters are the
second, independent layer (SPEC.md, "The one rule"): either layer alone keeps tenants apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlmodel import Session, col

from db.models import Task


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


def _after(sort: SortOrder, position: Position) -> ColumnElement[bool]:
    # The id tie-break runs opposite to the key so that (user_id, created_at DESC, id) serves
    # the default order forwards and `created` backwards.
    key = getattr(Task, sort.key)
    task_id = col(Task.id)
    if sort.descending:
        return or_(key < position.key, and_(key == position.key, task_id > position.id))
    return or_(key > position.key, and_(key == position.key, task_id < position.id))


def list_tasks(
    session: Session,
    user_id: str,
    *,
    status: StatusFilter,
    sort: SortOrder,
    limit: int,
    after: Position | None = None,
) -> Sequence[Task]:
    key = getattr(Task, sort.key)
    query = select(Task).where(col(Task.user_id) == user_id)
    if status is StatusFilter.pending:
        query = query.where(col(Task.completed).is_(False))
    elif status is StatusFilter.completed:
        query = query.where(col(Task.completed).is_(True))
    if after is not None:
        query = query.where(_after(sort, after))
    if sort.descending:
        query = query.order_by(key.desc(), col(Task.id).asc())
    else:
        query = query.order_by(key.asc(), col(Task.id).desc())
    return session.execute(query.limit(limit)).scalars().all()


def get_task(
    session: Session, user_id: str, task_id: uuid.UUID, *, for_update: bool = False
) -> Task | None:
    query = select(Task).where(col(Task.id) == task_id, col(Task.user_id) == user_id)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalars().one_or_none()


def create_task(
    session: Session, user_id: str, *, title: str, description: str | None, completed: bool
) -> Task:
    statement = (
        insert(Task)
        .values(user_id=user_id, title=title, description=description, completed=completed)
        .returning(Task)
    )
    task: Task = session.execute(statement).scalars().one()
    return task


def update_task(
    session: Session, user_id: str, task_id: uuid.UUID, values: dict[str, Any]
) -> Task | None:
    statement = (
        update(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .values(**values)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return session.execute(statement).scalars().one_or_none()


def toggle_completed(session: Session, user_id: str, task_id: uuid.UUID) -> Task | None:
    return update_task(session, user_id, task_id, {"completed": ~col(Task.completed)})


def delete_task(session: Session, user_id: str, task_id: uuid.UUID) -> bool:
    statement = (
        delete(Task)
        .where(col(Task.id) == task_id, col(Task.user_id) == user_id)
        .returning(col(Task.id))
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).first() is not None
