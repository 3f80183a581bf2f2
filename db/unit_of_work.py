"""The unit of work: one transaction per request, opened as the caller, committed or rolled back.

This is the only object that knows how identity reaches PostgreSQL. Every transaction it opens
starts with `db.identity`'s statement (runtime role, `app.user_id` and the transaction's time
limits, all `SET LOCAL`, one round trip), then runs the caller's work, then commits; anything
else rolls back. Callers get records back, never a response: nothing HTTP happens in here.

Two ways in, one policy for repeating them (`db.errors.may_repeat`):
- `run(user_id, work)`: the write path; `work` gets a SQLModel session.
- `read(user_id, query)`: the hot read path for list and get: BEGIN, the identity statement,
  the query and COMMIT as one psycopg pipeline, so one network round trip instead of four and
  no ORM session on the way (docs/performance.md).

A transaction that never reached COMMIT left nothing behind, so it is safe to repeat; one that
failed during COMMIT may have committed, so it is never repeated here (the client decides,
ideally with an `Idempotency-Key`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from db.engine import retire_pooled_connections
from db.errors import ConnectionLost, connection_lost, describe, may_repeat
from db.identity import IDENTITY_SQL, IDENTITY_STATEMENT, TransactionLimits, identity_params

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """One read-only statement in the driver's placeholder style (`%(name)s`) and its values."""

    sql: str
    params: Mapping[str, Any]


@dataclass
class _Attempt:
    """What one attempt got to: past COMMIT's send, its failure may hide a success."""

    reached_commit: bool = False


@dataclass
class _Waiting:
    """Requests blocked waiting for a pooled connection (SQLAlchemy has no public counter)."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        with self.lock:
            self.count += 1
        try:
            yield
        finally:
            with self.lock:
                self.count -= 1


class UnitOfWork:
    """The process's engine plus the limits every request transaction runs under."""

    def __init__(self, engine: Engine, limits: TransactionLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or TransactionLimits()
        self._waiting = _Waiting()

    @property
    def waiting_for_connection(self) -> int:
        return self._waiting.count

    def run(self, user_id: str, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction as `user_id`, repeating it when that is safe."""

        def once(attempt: _Attempt) -> T:
            with self._session(user_id) as session:
                result = work(session)
                attempt.reached_commit = True
                session.commit()
            return result

        return self._repeating(once)

    def read(self, user_id: str, query: Query) -> list[Any]:
        """Run one read-only query as `user_id` in its own pipelined transaction; its rows.

        A read never reaches a COMMIT that matters (it changed nothing), so any attempt that
        lost its connection may be repeated.
        """
        identity = identity_params(user_id, self.limits)

        def once(_: _Attempt) -> list[Any]:
            with self._waiting.waiting():
                pooled = self.engine.raw_connection()
            try:
                conn = pooled.driver_connection
                assert isinstance(conn, psycopg.Connection)
                try:
                    return _pipelined_read(conn, identity, query)
                except psycopg.Error as exc:
                    if conn.broken or conn.closed or connection_lost(exc):
                        pooled.invalidate(exc)
                        raise ConnectionLost(describe(exc)) from exc
                    raise
            finally:
                pooled.close()

        return self._repeating(once)

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self, user_id: str) -> Iterator[Session]:
        with self._waiting.waiting():
            connection = self.engine.connect()
        with connection, Session(bind=connection, expire_on_commit=False) as session:
            try:
                session.execute(IDENTITY_STATEMENT, identity_params(user_id, self.limits))
                yield session
            except BaseException:
                _rollback(session, connection)
                raise

    def _repeating(self, once: Callable[[_Attempt], T]) -> T:
        """Call `once` until it succeeds or `db.errors.may_repeat` says no (or attempts run out).

        A lost connection is repeated at most once, after every connection pooled before it is
        retired: what killed one (a restart, a Neon scale-to-zero) killed them all.
        """
        disconnects = 0
        for number in range(1, self.limits.max_attempts + 1):
            attempt = _Attempt()
            try:
                return once(attempt)
            except Exception as exc:
                last = number == self.limits.max_attempts
                if last or not may_repeat(
                    exc, reached_commit=attempt.reached_commit, disconnects=disconnects
                ):
                    raise
                if connection_lost(exc):
                    disconnects += 1
                    retire_pooled_connections(self.engine)
                else:
                    time.sleep(_backoff(number))
                log.info("transaction attempt %d failed (%s); retrying", number, describe(exc))
        raise AssertionError("unreachable: the last attempt returns or raises")


def _rollback(session: Session, connection: Connection) -> None:
    """Roll back without letting a second failure (the connection is gone) hide the first."""
    try:
        session.rollback()
    except DBAPIError:
        log.debug("rollback failed on a broken connection", exc_info=True)
        connection.invalidate()


def _backoff(attempt: int) -> float:
    # Jitter spreads out transactions that conflicted with each other; not security-relevant.
    return random.uniform(0, 0.02 * 2**attempt)  # noqa: S311


def _pipelined_read(
    conn: psycopg.Connection[Any], identity: Mapping[str, str], query: Query
) -> list[Any]:
    """The identity statement and the query in one pipeline, one transaction, one round trip.

    Up to its Sync, a pipeline is one transaction (PostgreSQL's protocol: the Sync commits what
    ran since the last one unless a BEGIN block is open, and rolls it back after an error), so
    the identity statement opens it and its `SET LOCAL` settings die at the Sync. The server
    runs the statements in order and skips everything after a failed one, so the query never
    runs without its identity. psycopg's own transaction handling would add two round trips (in
    a pipeline it syncs after the BEGIN it sends and again in `commit()`), so the connection is
    in autocommit mode (psycopg sends no BEGIN) only while the pipeline runs.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        conn.rollback()  # the identity statement must open the transaction
    cursor = conn.cursor(row_factory=namedtuple_row)
    conn.autocommit = True
    try:
        with conn.pipeline():
            conn.execute(IDENTITY_SQL, identity)
            cursor.execute(query.sql, query.params)
        return cursor.fetchall()
    except BaseException:
        if not conn.closed:
            try:
                conn.rollback()
            except psycopg.Error:
                log.debug("rollback failed on a broken connection", exc_info=True)
        raise
    finally:
        _leave_autocommit(conn)


def _leave_autocommit(conn: psycopg.Connection[Any]) -> None:
    """Hand the connection back as the write path expects it: outside autocommit.

    A pooled connection left in autocommit would run the write path's identity statement as a
    transaction of its own, so when that cannot be undone the connection is closed (the pool
    replaces a closed connection).
    """
    try:
        conn.autocommit = False
    except psycopg.Error:
        log.debug("closing a connection that could not leave autocommit", exc_info=True)
        conn.close()
