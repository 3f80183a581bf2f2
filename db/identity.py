"""Who a transaction acts as, and the one statement that tells PostgreSQL.

Every fact about the caller's identity has its home here: the runtime role RLS applies to, what
a user id may look like, and the identity statement that opens every request transaction. The
unit of work runs it; the benchmark's pgbench floor, the tests and `tasks-api prove` derive their
SQL from it, so changing it here changes what all of them measure and prove.

The statement uses `set_config(..., true)`, which is `SET LOCAL`: role and user id die with the
transaction, so a pooled connection (PgBouncer or Neon's pooler in transaction mode) never carries
one user's identity into another request. Every value is a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

RUNTIME_ROLE = "tasks_app"
USER_ID_SETTING = "app.user_id"

USER_ID_MAX = 255
# C0 and C1 control characters: they would forge log lines and confuse terminals.
_CONTROL = r"\u0000-\u001f\u007f-\u009f"
# A user id as a URL path segment: no control characters and no `/`, 1..USER_ID_MAX long.
USER_ID_PATTERN = rf"^[^{_CONTROL}/]+$"
CONTROL_CHARACTER = re.compile(f"[{_CONTROL}]")


class TextRules(TypedDict):
    """Length and pattern of a text value, in the keyword names pydantic and FastAPI take."""

    min_length: int
    max_length: int
    pattern: str


# The user id as the OpenAPI document publishes it, in the path and in every task.
USER_ID_RULES = TextRules(min_length=1, max_length=USER_ID_MAX, pattern=USER_ID_PATTERN)


@dataclass(frozen=True)
class TransactionLimits:
    statement_timeout_ms: int = 5000
    idle_in_transaction_timeout_ms: int = 10000
    # Attempts for a transaction that conflicted (serialization failure, deadlock, lost race).
    max_attempts: int = 3


IDENTITY_STATEMENT = text(
    "SELECT set_config('role', :role, true),"
    f" set_config('{USER_ID_SETTING}', :user_id, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " set_config('idle_in_transaction_session_timeout', :idle_timeout, true)"
)
# The same statement in the driver's placeholder style (`%(name)s`), for raw psycopg callers.
IDENTITY_SQL = str(IDENTITY_STATEMENT.compile(dialect=PGDialect_psycopg()))  # type: ignore[no-untyped-call]


def identity_params(user_id: str, limits: TransactionLimits) -> dict[str, str]:
    return {
        "role": RUNTIME_ROLE,
        "user_id": user_id,
        "statement_timeout": f"{limits.statement_timeout_ms}ms",
        "idle_timeout": f"{limits.idle_in_transaction_timeout_ms}ms",
    }


def identity_sql_with(variables: dict[str, str]) -> str:
    """The identity statement with each parameter replaced by the given SQL text, for tools
    that cannot bind (pgbench scripts use `:variables`; the values here are literals or
    variable names chosen by the caller, never client input)."""
    sql = IDENTITY_SQL
    for name, value in variables.items():
        sql = sql.replace(f"%({name})s", value)
    return sql
