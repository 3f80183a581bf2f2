"""The unit of work: one transaction per request, carrying the caller's identity into PostgreSQL.

This is the only module that knows how identity reaches the database. The first statement of
every transaction switches to the runtime role and sets `app.user_id`, both transaction-locally
(`set_config(..., true)` is `SET LOCAL`) and both as bound parameters, so a pooled connection
(including one behind PgBouncer or Neon's pooler in transaction mode) never carries one user's
identity into another request. The same round trip sets the transaction's time limits.

It also decides when a failed transaction may run again. A transaction that never reached COMMIT
left nothing behind, so it is safe to repeat; one that failed during COMMIT may have committed,
so it is never repeated here (the client decides, ideally with an `Idempotency-Key`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

RUNTIME_ROLE = "tasks_app"
# serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back and says so.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})

_BEGIN_AS = text(
    "SELECT set_config('role', :role, true),"
    " set_config('app.user_id', :user_id, true),"
    " set_config('statement_timeout', :statement_timeout, true),"
    " set_config('idle_in_transaction_session_timeout', :idle_timeout, true)"
)
# The same statement in the driver's placeholder style, for the pipelined read path.
_BEGIN_AS_SQL = str(_BEGIN_AS.compile(dialect=PGDialect_psycopg()))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Query:
    """One read-only statement in the driver's placeholder style (`%(name)s`) and its values."""

    sql: str
    params: Mapping[str, Any]


class RetryTransaction(Exception):
    """Raised by a unit of work to be run again from the start, e.g. after losing a race."""


@dataclass(frozen=True)
class TransactionLimits:
    statement_timeout_ms: int = 5000
    idle_in_transaction_timeout_ms: int = 10000
    # Attempts for a transaction that conflicted (serialization failure, deadlock, lost race).
    max_attempts: int = 3


def _begin(session: Session, user_id: str, limits: TransactionLimits) -> None:
    """Run the identity statement; on a connection found dead, retry once on a fresh one.

    Nothing of the caller's has run yet, so the retry cannot repeat any work.
    """
    params = _identity_params(user_id, limits)
    try:
        session.execute(_BEGIN_AS, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("pooled connection was dead before the first statement; retrying once")
        session.rollback()
        session.execute(_BEGIN_AS, params)


def _rollback(session: Session) -> None:
    """Roll back without letting a second failure (the connection is gone) hide the first."""
    try:
        session.rollback()
    except DBAPIError:
        log.debug("rollback failed on a broken connection", exc_info=True)


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
        _begin(session, user_id, lim)
        try:
            yield session
            session.commit()
        except BaseException:
            _rollback(session)
            raise


def _may_repeat(exc: BaseException, *, reached_commit: bool, disconnects: int) -> bool:
    if isinstance(exc, RetryTransaction):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES:
        return True  # PostgreSQL reports these only for transactions it rolled back
    return exc.connection_invalidated and not reached_commit and disconnects == 0


def _backoff(attempt: int) -> float:
    # Jitter spreads out transactions that conflicted with each other; not security-relevant.
    return random.uniform(0, 0.02 * 2**attempt)  # noqa: S311


class Database:
    """The process's engine plus the limits every request transaction runs under."""

    def __init__(self, engine: Engine, limits: TransactionLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or TransactionLimits()

    def transaction(self, user_id: str) -> AbstractContextManager[Session]:
        return rls_transaction(self.engine, user_id, self.limits)

    def run(self, user_id: str, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction as `user_id`, repeating it when that is safe.

        Repeated (a bounded number of times): serialization failures and deadlocks, a
        `RetryTransaction` raised by `work`, and (once) a connection lost before COMMIT was sent.
        A failure during COMMIT is raised as is: the transaction may have committed.
        """
        disconnects = 0
        for attempt in range(1, self.limits.max_attempts + 1):
            reached_commit = False
            try:
                with rls_transaction(self.engine, user_id, self.limits) as session:
                    result = work(session)
                    reached_commit = True  # rls_transaction commits as this block ends
                return result
            except Exception as exc:
                last = attempt == self.limits.max_attempts
                if last or not _may_repeat(
                    exc, reached_commit=reached_commit, disconnects=disconnects
                ):
                    raise
                if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    disconnects += 1
                log.info("transaction attempt %d failed (%s); retrying", attempt, _reason(exc))
                time.sleep(_backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def read(self, user_id: str, query: Query) -> list[Any]:
        """Run one read-only query as `user_id` in its own transaction; return its rows.

        The hot path for list and get. The transaction is the same as `transaction()`'s (the
        identity statement first, then the query, then COMMIT) but sent as one psycopg pipeline
        on the pooled connection: one network round trip instead of four, and no ORM session
        on the way (docs/performance.md). A read repeats safely, so a pooled connection found
        dead is replaced once.
        """
        identity = _identity_params(user_id, self.limits)
        for attempt in (1, 2):
            pooled = self.engine.raw_connection()
            conn = pooled.driver_connection
            assert isinstance(conn, psycopg.Connection)
            try:
                return _pipelined_read(conn, identity, query)
            except psycopg.OperationalError as exc:
                if attempt == 2 or not _connection_lost(conn, exc):
                    raise
                log.info("pooled connection was dead before the read; retrying once")
                # What killed this connection (a restart, a Neon scale-to-zero) killed every
                # connection pooled before it: have the pool replace them all on checkout, as
                # SQLAlchemy does for disconnects it sees itself, so the retry gets a live one.
                self.engine.pool._invalidate(pooled, exc)
            finally:
                pooled.close()
        raise AssertionError("unreachable: the second attempt returns or raises")

    def dispose(self) -> None:
        self.engine.dispose()


def _connection_lost(conn: psycopg.Connection[Any], exc: BaseException) -> bool:
    """The connection, not the query, failed: closed, broken, or ended by the server (08, 57P*).

    A server shutdown in the middle of a pipeline surfaces as "cannot exit pipeline mode while
    busy" on a connection not yet marked broken; the shutdown is in the exception's context.
    """
    if conn.broken or conn.closed:
        return True
    return any(
        isinstance(cause, psycopg.Error) and (cause.sqlstate or "").startswith(("08", "57P"))
        for cause in (exc, exc.__context__, exc.__cause__)
    )


def identity_statement(
    user_id: str, limits: TransactionLimits | None = None
) -> tuple[str, dict[str, str]]:
    """The identity statement and its bound values, for callers on a raw psycopg connection.

    `tasks-api prove` must set identity exactly as a request does; handing it this statement
    keeps the one copy here instead of a second one that could drift.
    """
    return _BEGIN_AS_SQL, _identity_params(user_id, limits or TransactionLimits())


def _identity_params(user_id: str, limits: TransactionLimits) -> dict[str, str]:
    return {
        "role": RUNTIME_ROLE,
        "user_id": user_id,
        "statement_timeout": f"{limits.statement_timeout_ms}ms",
        "idle_timeout": f"{limits.idle_in_transaction_timeout_ms}ms",
    }


def _pipelined_read(
    conn: psycopg.Connection[Any], identity: Mapping[str, str], query: Query
) -> list[Any]:
    """BEGIN, identity, query, COMMIT in one pipeline; the server runs them in order and skips
    everything after a failed statement, so the query never runs without its identity."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.rollback()  # the identity statement must open the transaction
    cursor = conn.cursor(row_factory=namedtuple_row)
    try:
        with conn.pipeline():
            conn.execute(_BEGIN_AS_SQL, identity)
            cursor.execute(query.sql, query.params)
            conn.commit()
        return cursor.fetchall()
    except BaseException:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg.Error:
                log.debug("rollback failed on a broken connection", exc_info=True)
        raise


def _reason(exc: BaseException) -> str:
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return str(sqlstate) if sqlstate else type(exc).__name__
