"""The unit of work: one transaction per request, opened as the caller, committed or rolled back.

This is the only object that knows how identity reaches PostgreSQL. Every transaction it opens
starts with `db.identity`'s statement (runtime role, `app.user_id` and the transaction's time
limits, all `SET LOCAL`; on the write path sent with its BEGIN in one round trip), then runs the
caller's work, then commits; anything else rolls back. Callers get records back, never a
response: nothing HTTP happens in here.

Two ways in, one policy for repeating them (`db.errors.may_repeat`):
- `write(user_id, work)`: the write path; `work` gets a SQLModel session, and the result says
  where the transaction committed in the WAL (`Committed.lsn`, read in the same round trip as
  COMMIT), so that a later read can ask for a replica that has replayed it. The handlers use it
  (their answers carry a `Consistency-Token`); `run` is the same without the position.
- `read(user_id, query)`: the hot read path for list and get: the identity statement and the
  query as one pipeline ending in one Sync, written to the socket at once (`db.pipeline`),
  which PostgreSQL runs as one implicit transaction: one network round trip and no ORM session
  on the way (docs/performance.md).
  With `from_replica`, the same pipeline runs
  on a replica `db.replicas.ReplicaSet.choose` picks (fresh enough, and past `at_least` when
  given), else on the primary; a replica that fails the read hands it to the primary.

A transaction that never reached COMMIT left nothing behind, so it is safe to repeat; one that
failed during COMMIT may have committed, so it is never repeated here (the client decides,
ideally with an `Idempotency-Key`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session

from db.engine import checkout, pool_timeout, retire_pooled_connections
from db.errors import (
    ConnectionLost,
    connection_lost,
    describe,
    is_unavailable,
    may_repeat,
    server_failed,
)
from db.identity import IDENTITY_SQL, TransactionLimits, identity_params
from db.pipeline import Prepared, begin, run_pipeline
from db.replicas import Replica, ReplicaSet, format_lsn, parse_lsn

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """One read-only statement in the driver's placeholder style (`%(name)s`) and its values."""

    sql: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Committed(Generic[T]):
    """What a write's work returned, and the WAL position its commit record ends at or before."""

    value: T
    lsn: int


@dataclass(frozen=True)
class ReadServed:
    """Where one read ran (`primary` or a replica's label) and, on the primary while replicas
    exist, why (`token`, `lag`, `replica_error`); for metrics and logs."""

    target: str
    fallback: str | None


ReadListener = Callable[[ReadServed], None]

# COMMIT and, in the same simple-protocol message (one round trip), the WAL insert position
# after it. Taken after COMMIT, the position is at or past the end of the commit record, so a
# standby that has replayed it has replayed the commit: the write is visible there. (The insert
# position read inside the transaction is before the commit record; `pg_current_wal_lsn()`, the
# write position, can trail the commit record under `synchronous_commit = off`.)
_COMMIT_AND_LOCATE = "COMMIT; SELECT pg_current_wal_insert_lsn()::text"
# The replica's replay position, in the read's own pipeline: a token read whose replica turns
# out (say, a different server behind the same URL) not to have replayed the write is redone on
# the primary instead of answering stale rows.
_REPLAYED_AT_LEAST = "SELECT pg_last_wal_replay_lsn() >= %(at_least)s::pg_lsn"


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

    def __init__(
        self,
        engine: Engine,
        limits: TransactionLimits | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self.engine = engine
        self.limits = limits or TransactionLimits()
        self.replicas = replicas
        self.read_listeners: list[ReadListener] = []
        self._waiting = _Waiting()

    @property
    def waiting_for_connection(self) -> int:
        return self._waiting.count

    def run(self, user_id: str, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction as `user_id`, repeating it when that is safe."""
        return self._transact(user_id, work, locate=False)[0]

    def write(self, user_id: str, work: Callable[[Session], T]) -> Committed[T]:
        """`run`, also returning the WAL position the commit is replayed by (no extra trip)."""
        result, lsn = self._transact(user_id, work, locate=True)
        assert lsn is not None
        return Committed(result, lsn)

    def _transact(
        self, user_id: str, work: Callable[[Session], T], *, locate: bool
    ) -> tuple[T, int | None]:
        """The one write transaction: identity, work, COMMIT (with its WAL position when
        `locate`), repeated as `_repeating` allows."""

        def once(attempt: _Attempt) -> tuple[T, int | None]:
            with self._session(user_id) as session:
                result = work(session)
                if not locate:
                    attempt.reached_commit = True
                    session.commit()
                    return result, None
                session.flush()
                attempt.reached_commit = True
                lsn = _commit_and_locate(session)
                session.commit()  # psycopg's commit is a no-op now; SQLAlchemy's state follows
            return result, lsn

        return self._repeating(once)

    async def read(
        self,
        user_id: str,
        query: Query,
        *,
        from_replica: bool = False,
        at_least: int | None = None,
    ) -> list[Any]:
        """Run one read-only query as `user_id` in its own pipelined transaction; its rows.

        On the event loop, end to end: no worker thread, no thread hand-off (measured in
        docs/performance.md). With `from_replica`, on a replica fresh enough (and, with
        `at_least`, one that has replayed that LSN) when there is one. A replica's failure is
        never the caller's: the read runs on the primary instead, and a replica that lost its
        connection leaves rotation. A read never reaches a COMMIT that matters (it changed
        nothing), so any attempt that lost its connection may be repeated.
        """
        identity = identity_params(user_id, self.limits)

        async def once(_: _Attempt) -> list[Any]:
            if not from_replica or self.replicas is None or not self.replicas.replicas:
                return await self._on_primary(identity, query, None)
            choice = self.replicas.choose(at_least)
            if choice.replica is None:
                return await self._on_primary(identity, query, choice.fallback)
            try:
                rows = await self._read_on(choice.replica.engine, identity, query, at_least)
            except Exception as exc:
                if not (isinstance(exc, psycopg.Error) or is_unavailable(exc)):
                    raise
                self._replica_failed(choice.replica, exc)
                return await self._on_primary(identity, query, "replica_error")
            if rows is None:
                return await self._on_primary(identity, query, "token")
            self._served(choice.replica.label, None)
            return rows

        # One token for the whole read, taken before a target is chosen: waiting for it is this
        # process's congestion, never a replica's failure.
        async with _budget_with(self._waiting, pool_timeout(self.engine)):
            attempts = self._attempts()
            while True:
                attempt = _Attempt()
                try:
                    return await once(attempt)
                except Exception as exc:
                    await anyio.sleep(attempts.after(exc, attempt))

    def start(self) -> None:
        """Begin watching the replicas (a no-op without any)."""
        if self.replicas is not None:
            self.replicas.start()

    def dispose(self) -> None:
        if self.replicas is not None:
            self.replicas.dispose()
        self.engine.dispose()

    async def _on_primary(
        self, identity: Mapping[str, str], query: Query, fallback: str | None
    ) -> list[Any]:
        rows = await self._read_on(self.engine, identity, query)
        self._served("primary", fallback)
        assert rows is not None, "the primary is never asked for a replay position"
        return rows

    def _served(self, target: str, fallback: str | None) -> None:
        served = ReadServed(target, fallback)
        for listener in self.read_listeners:
            listener(served)

    def _replica_failed(self, replica: Replica, exc: BaseException) -> None:
        """A replica whose server failed leaves rotation; a statement's own trouble (a recovery
        conflict or a timeout cancelling it) only sends this one read to the primary, so one
        tenant's slow query never takes the replica away from everyone."""
        reason = describe(exc, with_message=True)
        if self.replicas is not None and server_failed(exc):
            self.replicas.leave_rotation(replica, reason)
        log.warning(
            "read on %s (%s) failed, served by the primary: %s", replica.label, replica.host, reason
        )

    async def _read_on(
        self,
        engine: Engine,
        identity: Mapping[str, str],
        query: Query,
        at_least: int | None = None,
    ) -> list[Any] | None:
        """The read on one of `engine`'s connections, inside the read's token (`_budget_with`),
        so the loop's checkout finds a connection idle."""
        pooled = await checkout(engine)
        conn = pooled.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            with _losing(conn, pooled.invalidate):
                return await _pipelined_read(pooled, conn, identity, query, at_least)
        finally:
            if conn.closed and pooled.dbapi_connection is not None:
                pooled.invalidate()  # cut short (say, cancelled): never back in the pool
            pooled.close()

    @contextmanager
    def _session(self, user_id: str) -> Iterator[Session]:
        with self._waiting.waiting():
            connection = self.engine.connect()
        with connection, Session(bind=connection, expire_on_commit=False) as session:
            try:
                _open_as(connection, identity_params(user_id, self.limits))
                yield session
            except BaseException:
                _rollback(session, connection)
                raise

    def _repeating(self, once: Callable[[_Attempt], T]) -> T:
        """Call `once` until it succeeds or `_Attempts` says no."""
        attempts = self._attempts()
        while True:
            attempt = _Attempt()
            try:
                return once(attempt)
            except Exception as exc:
                time.sleep(attempts.after(exc, attempt))

    def _attempts(self) -> _Attempts:
        return _Attempts(self.engine, self.limits.max_attempts)


@dataclass
class _Attempts:
    """One policy for repeating a transaction, for the blocking and the awaited paths alike:
    until it succeeds or `db.errors.may_repeat` says no (or attempts run out).

    A lost connection is repeated at most once, after every connection pooled before it is
    retired: what killed one (a restart, a Neon scale-to-zero) killed them all.
    """

    engine: Engine
    max_attempts: int
    number: int = 0
    disconnects: int = 0

    def after(self, exc: Exception, attempt: _Attempt) -> float:
        """How long to back off before the next attempt; re-raises `exc` when there is none."""
        self.number += 1
        last = self.number == self.max_attempts
        if last or not may_repeat(
            exc, reached_commit=attempt.reached_commit, disconnects=self.disconnects
        ):
            raise exc
        log.info("transaction attempt %d failed (%s); retrying", self.number, describe(exc))
        if connection_lost(exc):
            self.disconnects += 1
            retire_pooled_connections(self.engine)
            return 0.0
        return _backoff(self.number)


@asynccontextmanager
async def _budget_with(waiting: _Waiting, timeout: float | None) -> AsyncIterator[None]:
    """Hold one token of the blocking handlers' budget (anyio's default limiter, sized to the
    pool by the app), counted as waiting until it is ours: reads and writes together then never
    hold more connections than the pool keeps, so the loop never waits in the pool.

    A token stands for a connection, so waiting for one past the pool's timeout ends as
    waiting in the pool would: SQLAlchemy's TimeoutError, which `db.errors` answers 503."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    try:
        limiter.acquire_nowait()  # the common case: a token is free, no timer needed
    except anyio.WouldBlock:
        with waiting.waiting():
            try:
                with anyio.fail_after(timeout):
                    await limiter.acquire()
            except TimeoutError:
                raise PoolTimeoutError(
                    f"no connection free within {timeout}s: all {limiter.total_tokens} of"
                    " this process's units of work are in use"
                ) from None
    try:
        yield
    finally:
        limiter.release()


def _open_as(connection: Connection, identity: Mapping[str, str]) -> None:
    """BEGIN and the identity statement in one round trip (`db.pipeline.begin`), where psycopg
    would spend one on its own BEGIN first; the ORM's statements then run in that transaction
    (psycopg sees it open and sends no BEGIN of its own)."""
    pooled = connection.connection
    conn = pooled.driver_connection
    assert isinstance(conn, psycopg.Connection)
    with _losing(conn, connection.invalidate):
        begin(conn, IDENTITY_SQL, identity, _prepared(pooled, conn))


@contextmanager
def _losing(
    conn: psycopg.Connection[Any], invalidate: Callable[[BaseException], None]
) -> Iterator[None]:
    """A raw psycopg exchange: a failure that lost the connection invalidates it in the pool
    and surfaces as ConnectionLost (classified once, in `db.errors`)."""
    try:
        yield
    except psycopg.Error as exc:
        if conn.broken or conn.closed or connection_lost(exc):
            invalidate(exc)
            raise ConnectionLost(describe(exc)) from exc
        raise


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


def _commit_and_locate(session: Session) -> int:
    conn = session.connection().connection.driver_connection
    assert isinstance(conn, psycopg.Connection)
    # Two statements in one simple-protocol message: never a prepared statement.
    cursor = conn.execute(_COMMIT_AND_LOCATE, prepare=False)
    cursor.nextset()
    row = cursor.fetchone()
    assert row is not None and row[0] is not None
    return parse_lsn(str(row[0]))


async def _pipelined_read(
    pooled: PoolProxiedConnection,
    conn: psycopg.Connection[Any],
    identity: Mapping[str, str],
    query: Query,
    at_least: int | None = None,
) -> list[Any] | None:
    """The identity statement and the query as one pipeline: one transaction, one round trip
    (`db.pipeline`). The identity statement goes first, so the query never runs without it.

    With `at_least` (a replica read for a client's last write), the replay position is checked
    in the same pipeline; None when the server has not replayed that far.
    """
    statements: list[tuple[str, Mapping[str, Any]]] = [(IDENTITY_SQL, identity)]
    if at_least is not None:
        statements.append((_REPLAYED_AT_LEAST, {"at_least": format_lsn(at_least)}))
    statements.append((query.sql, query.params))
    results = await run_pipeline(conn, statements, _prepared(pooled, conn))
    if at_least is not None:
        replayed = results[1]
        if not (replayed and replayed[0][0]):
            return None
    return results[-1]


def _prepared(pooled: PoolProxiedConnection, conn: psycopg.Connection[Any]) -> Prepared | None:
    """This connection's prepared statements, when the engine prepares them at all (psycopg's
    `prepare_threshold`, set from DB_PREPARED_STATEMENTS by `db.engine.build_engine`)."""
    if conn.prepare_threshold is None:
        return None
    prepared = pooled.info.get("prepared")
    if not isinstance(prepared, Prepared):
        prepared = pooled.info["prepared"] = Prepared(conn.prepare_threshold)
    return prepared
