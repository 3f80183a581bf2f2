"""The queries the handlers issue. Every one filters by `user_id` itself.

Row-level security already limits each transaction to the caller's rows; these filters are the
second, independent layer (SPEC.md, "The one rule"): either layer alone keeps tenants apart.

The queries are SQLAlchemy Core over the SQLModel table and return plain rows, not ORM objects:
building a tracked `Task` per row was a fifth of a list request's CPU (bench/, docs/performance.md)
and nothing here needs the identity map. The SQL sent is the same.

The two hot reads (list and get) go further, the way PostgREST does: PostgreSQL writes the JSON
document itself and the service passes its bytes through, so no row becomes a Python object.
The document is byte for byte what pydantic writes for `TaskPublic` from the row psycopg would
return (same keys in table order, compact separators, the same string escapes, timestamps in the
session's time zone, `Z` for a zero offset, microseconds only when non-zero);
tests/db/test_task_documents.py holds the two encodings side by side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
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


class PageRow(Protocol):
    """The list query's one row: the page as a JSON array, and where it ended.

    `fetched` counts the look-ahead row too: more than the page size means another page follows,
    and `last_key`/`last_id` (the page's last task's sort key and id) position its cursor.
    """

    @property
    def body(self) -> str: ...
    @property
    def fetched(self) -> int: ...
    @property
    def last_key(self) -> datetime | str | None: ...
    @property
    def last_id(self) -> uuid.UUID | None: ...


class DocumentRow(Protocol):
    """The get query's row: the task as its JSON document."""

    @property
    def body(self) -> str: ...


# pydantic writes an aware datetime as RFC 3339: microseconds only when non-zero, `Z` for a
# zero offset. to_char formats in the session's time zone, the one psycopg returns rows in. No
# `:` is followed by a letter or digit in the SQL text, so pgbench can run it unchanged
# (bench/floor.py): the offset's colon is spelled `#` and put back last.
_RFC3339 = 'YYYY-MM-DD"T"HH24":"MI":"SS.USTZH"#"TZM'


def _json_value(column: ColumnElement[Any]) -> ColumnElement[Any]:
    if not isinstance(column.type, DateTime):
        return column  # row_to_json encodes uuid, text, bool and NULL as pydantic does
    text = func.to_char(column, _sql_text(_RFC3339))
    text = func.replace(text, _sql_text(".000000"), _sql_text(""))
    text = func.replace(text, _sql_text("+00#00"), _sql_text("Z"))
    return func.replace(text, _sql_text("#"), _sql_text(":"))


def _document(source: FromClause, *, correlated: bool = False) -> ColumnElement[str]:
    """`source`'s task columns as one JSON object, keys in the table's (and TaskPublic's) order."""
    fields = select(*(_json_value(source.c[c.name]).label(c.name) for c in TASK.c))
    if correlated:
        fields = fields.correlate(source)
    return cast(func.row_to_json(fields.subquery("doc").table_valued()), Text)


def _sql_text(value: str) -> ColumnElement[str]:
    """A constant of the statement itself, not a parameter: the compiled text stays fixed."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def _ordering(sort: SortOrder) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    key = TASK.c[sort.key]
    if sort.descending:
        return key.desc(), TASK.c.id.asc()
    return key.asc(), TASK.c.id.desc()


@lru_cache(maxsize=64)
def _list_sql(status: StatusFilter, sort: SortOrder, paged: bool) -> str:
    """The list statement for one (status, sort, cursor or not) shape, compiled once.

    One row comes back whatever the page size: the page's JSON array, the number of rows read
    (page size + 1 look-ahead at most) and the last row's position, all computed in SQL.
    """
    query = select(TASK).where(TASK.c.user_id == bindparam("user_id", type_=TASK.c.user_id.type))
    if status is StatusFilter.pending:
        query = query.where(TASK.c.completed.is_(False))
    elif status is StatusFilter.completed:
        query = query.where(TASK.c.completed.is_(True))
    if paged:
        query = query.where(_after(sort))
    ordering = _ordering(sort)
    rows = (
        query.add_columns(func.row_number().over(order_by=ordering).label("n"))
        .order_by(*ordering)
        .limit(bindparam("fetch", type_=Integer))
        .subquery("page")
    )
    doc = select(_document(rows, correlated=True).label("json")).lateral("task_json")
    in_page = rows.c.n <= bindparam("limit", type_=Integer)
    at_end = rows.c.n == bindparam("limit", type_=Integer)
    body = func.string_agg(doc.c.json, aggregate_order_by(_sql_text(","), rows.c.n))
    first = literal_column("1", Integer)
    page = select(
        (_sql_text("[") + func.coalesce(body.filter(in_page), _sql_text("")) + _sql_text("]"))
        .label("body"),
        func.count().label("fetched"),
        func.array_agg(rows.c[sort.key]).filter(at_end)[first].label("last_key"),
        func.array_agg(rows.c.id).filter(at_end)[first].label("last_id"),
    ).select_from(rows.join(doc, true()))
    return _compiled(page)


def list_query(
    user_id: str,
    *,
    status: StatusFilter,
    sort: SortOrder,
    limit: int,
    after: Position | None = None,
) -> Query:
    """One page of the caller's tasks, for `UnitOfWork.read`: one row that follows PageRow."""
    params: dict[str, Any] = {"user_id": user_id, "limit": limit, "fetch": limit + 1}
    if after is not None:
        params |= {"after_key": after.key, "after_id": after.id}
    return Query(_list_sql(status, sort, after is not None), params)


_GET_SQL_SHAPE = select(TASK).where(
    TASK.c.id == bindparam("task_id", type_=TASK.c.id.type),
    TASK.c.user_id == bindparam("user_id", type_=TASK.c.user_id.type),
)


def get_query(user_id: str, task_id: uuid.UUID) -> Query:
    """One of the caller's tasks as a DocumentRow (no row when missing or someone else's)."""
    return Query(_GET_SQL, {"task_id": task_id, "user_id": user_id})


def _compiled(statement: Select[Any]) -> str:
    return str(statement.compile(dialect=_DIALECT))


_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]
_GET_SQL = _compiled(select(_document(_GET_SQL_SHAPE.subquery("found")).label("body")))


def get_task(
    session: Session, user_id: str, task_id: uuid.UUID, *, for_update: bool = False
) -> TaskRecord | None:
    query = select(TASK).where(TASK.c.id == task_id, TASK.c.user_id == user_id)
    if for_update:
        query = query.with_for_update()
    return typed(TaskRecord | None, session.execute(query).one_or_none())


def create_task(
    session: Session, user_id: str, *, title: str, description: str | None, completed: bool
) -> TaskRecord:
    statement = (
        insert(TASK)
        .values(user_id=user_id, title=title, description=description, completed=completed)
        .returning(*TASK.c)
    )
    return typed(TaskRecord, session.execute(statement).one())


def update_task(
    session: Session, user_id: str, task_id: uuid.UUID, values: dict[str, Any]
) -> TaskRecord | None:
    statement = (
        update(TASK)
        .where(TASK.c.id == task_id, TASK.c.user_id == user_id)
        .values(**values)
        .returning(*TASK.c)
    )
    return typed(TaskRecord | None, session.execute(statement).one_or_none())


def toggle_completed(session: Session, user_id: str, task_id: uuid.UUID) -> TaskRecord | None:
    return update_task(session, user_id, task_id, {"completed": ~TASK.c.completed})


def delete_task(session: Session, user_id: str, task_id: uuid.UUID) -> bool:
    statement = (
        delete(TASK).where(TASK.c.id == task_id, TASK.c.user_id == user_id).returning(TASK.c.id)
    )
    return session.execute(statement).first() is not None
