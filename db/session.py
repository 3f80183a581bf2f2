"""The unit of work: one transaction per request, carrying the caller's identity into PostgreSQL.

This is the only module that knows how identity reaches the database. The first statement of
every transaction switches to the runtime role and sets `app.user_id`, both transaction-locally
(`set_config(..., true)` is `SET LOCAL`) and both as bound parameters, so a pooled connection
(including one behind PgBouncer or Neon's pooler in transaction mode) never carries one user's
identity into another request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlmodel import Session

RUNTIME_ROLE = "tasks_app"

_BEGIN_AS = text(
    "SELECT set_config('role', :role, true),"
    " set_config('app.user_id', :user_id, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " set_config('idle_in_transaction_session_timeout', :idle_timeout, true)"
)


@dataclass(frozen=True)
class TransactionLimits:
    statement_timeout_ms: int = 5000
    idle_in_transaction_timeout_ms: int = 10000


@contextmanager
def rls_transaction(
    engine: Engine, user_id: str, limits: TransactionLimits | None = None
) -> Iterator[Session]:
    """Open a transaction as `tasks_app` for `user_id`; commit on success, roll back otherwise.

    The commit happens here, before the caller builds its response, so a failed commit can never
    be reported as a success.
    """
    lim = limits or TransactionLimits()
    with Session(engine, expire_on_commit=False) as session:
        session.execute(
            _BEGIN_AS,
            {
                "role": RUNTIME_ROLE,
                "user_id": user_id,
                "statement_timeout": f"{lim.statement_timeout_ms}ms",
                "idle_timeout": f"{lim.idle_in_transaction_timeout_ms}ms",
            },
        )
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class Database:
    """The process's engine plus the limits every request transaction runs under."""

    def __init__(self, engine: Engine, limits: TransactionLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or TransactionLimits()

    def transaction(self, user_id: str) -> AbstractContextManager[Session]:
        return rls_transaction(self.engine, user_id, self.limits)

    def dispose(self) -> None:
        self.engine.dispose()
