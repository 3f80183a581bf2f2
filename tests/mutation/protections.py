"""The protections that keep tenants apart, each with the way to take it away for one sweep.

A protection is either database state, removed by SQL on the test session's own throwaway
database after migration, or one query function's `user_id` filter, removed in the test process:
while that function runs (or in the statement it returns), the predicate `<table>.user_id =
%(param)s` of the SQL sent to PostgreSQL becomes `true`. That works whatever shape the query code
takes (ORM, Core or precompiled SQL). Nothing on disk is edited.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import psycopg

SQL_SUITE = (
    "tests/db/test_rls_default_deny.py",
    "tests/db/test_rls_reads.py",
    "tests/db/test_rls_writes.py",
    "tests/db/test_rls_force.py",
    "tests/db/test_policies_match_catalog.py",
)
FILTER_SUITE = ("tests/api/test_filters_alone.py",)

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"
# Query functions that take a user_id but filter nothing (they write the caller's id).
WRITERS_WITHOUT_FILTER = frozenset({"db.tasks.create_task", "db.idempotency.remember"})


@dataclass(frozen=True)
class Protection:
    name: str
    layer: str  # "rls": the database's half; "filter": the handlers' half
    remove_sql: str = ""
    function: str = ""  # "module.function" whose user_id filter is removed

    @property
    def suite(self) -> tuple[str, ...]:
        return SQL_SUITE if self.layer == "rls" else FILTER_SUITE


def _sql(name: str, statement: str) -> Protection:
    return Protection(name, "rls", remove_sql=statement)


def _filter(function: str) -> Protection:
    return Protection(f"{function} user_id filter", "filter", function=function)


PROTECTIONS: tuple[Protection, ...] = (
    _sql("policy task_select_own dropped", "DROP POLICY task_select_own ON task"),
    _sql("policy task_insert_own dropped", "DROP POLICY task_insert_own ON task"),
    _sql("policy task_update_own dropped", "DROP POLICY task_update_own ON task"),
    _sql("policy task_delete_own dropped", "DROP POLICY task_delete_own ON task"),
    _sql("task_select_own USING (true)", "ALTER POLICY task_select_own ON task USING (true)"),
    _sql(
        "task_insert_own WITH CHECK (true)",
        "ALTER POLICY task_insert_own ON task WITH CHECK (true)",
    ),
    _sql(
        "task_update_own USING (true)",
        f"ALTER POLICY task_update_own ON task USING (true) WITH CHECK ({OWN})",
    ),
    _sql(
        "task_update_own WITH CHECK (true)",
        f"ALTER POLICY task_update_own ON task USING ({OWN}) WITH CHECK (true)",
    ),
    _sql("task_delete_own USING (true)", "ALTER POLICY task_delete_own ON task USING (true)"),
    _sql("FORCE row level security", "ALTER TABLE task NO FORCE ROW LEVEL SECURITY"),
    _sql("ENABLE row level security", "ALTER TABLE task DISABLE ROW LEVEL SECURITY"),
    _sql("no UPDATE (user_id) grant", "GRANT UPDATE (user_id) ON task TO tasks_app"),
    _sql("no UPDATE (id) grant", "GRANT UPDATE (id) ON task TO tasks_app"),
    _sql("no UPDATE (created_at) grant", "GRANT UPDATE (created_at) ON task TO tasks_app"),
    _sql("no INSERT (id) grant", "GRANT INSERT (id) ON task TO tasks_app"),
    _sql("no TRUNCATE grant", "GRANT TRUNCATE ON task TO tasks_app"),
    _filter("db.tasks.list_query"),
    _filter("db.tasks.get_query"),
    _filter("db.tasks.get_task"),
    _filter("db.tasks.update_task"),
    _filter("db.tasks.toggle_completed"),
    _filter("db.tasks.delete_task"),
    _filter("db.idempotency.find"),
    _filter("db.idempotency.purge_expired"),
)


def filtered_query_functions() -> set[str]:
    """Every query function that takes a `user_id` and so must filter by it."""
    found = set()
    for module_name in ("db.tasks", "db.idempotency"):
        module = import_module(module_name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if (
                function.__module__ == module_name
                and not name.startswith("_")
                and "user_id" in inspect.signature(function).parameters
            ):
                found.add(f"{module_name}.{name}")
    return found - WRITERS_WITHOUT_FILTER


_USER_FILTER = re.compile(r"\b(?:task|idempotency_key)\.user_id\s*=\s*%\(\w+\)s(?:::\w+)?")
_stripping: ContextVar[bool] = ContextVar("stripping", default=False)


class FilterRemoval:
    """Removes one function's user_id filter; `removed` counts predicates actually taken out."""

    def __init__(self, function: str) -> None:
        self.module_name, _, self.function = function.rpartition(".")
        self.removed = 0

    def strip(self, sql: str) -> str:
        stripped, count = _USER_FILTER.subn("true", sql)
        self.removed += count
        return stripped

    @contextmanager
    def applied(self) -> Iterator[None]:
        module = import_module(self.module_name)
        original_function = getattr(module, self.function)
        original_execute = psycopg.Cursor.execute
        removal = self

        def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            if _stripping.get() and isinstance(query, str):
                query = removal.strip(query)
            return original_execute(cursor, query, *args, **kwargs)

        @functools.wraps(original_function)
        def unfiltered(*args: Any, **kwargs: Any) -> Any:
            token = _stripping.set(True)
            try:
                result = original_function(*args, **kwargs)
            finally:
                _stripping.reset(token)
            sql = getattr(result, "sql", None)
            if isinstance(sql, str) and dataclasses.is_dataclass(result):
                # A statement built now, run later (the pipelined read path): strip it here.
                result = dataclasses.replace(result, sql=removal.strip(sql))  # type: ignore[type-var]
            return result

        setattr(psycopg.Cursor, "execute", execute)  # noqa: B010 (patching a method on purpose)
        setattr(module, self.function, unfiltered)
        try:
            yield
        finally:
            setattr(module, self.function, original_function)
            setattr(psycopg.Cursor, "execute", original_execute)  # noqa: B010
