"""One read, one network write: the identity statement and the query sent together, one Sync.

psycopg's pipeline mode runs a loop per statement: it waits for the socket to be writable,
flushes, queues the next statement, and polls again. For the identity statement and a query
that was 4 `sendto` and 7 `poll` calls per read (strace), and about two thirds of the client's
CPU for the read (docs/performance.md). Here every statement is queued in libpq's buffer
through the connection's own libpq handle (`Connection.pgconn`, psycopg's documented door to
what it does not wrap), flushed at once with the Sync, and the answers are read as they arrive.
Values are dumped and rows loaded by psycopg's own adapters (`psycopg.adapt.Transformer`), so
they travel exactly as `cursor.execute` would send them: bound parameters, never SQL text.

The exchange itself never waits (`_exchange`, a generator in the way psycopg separates its
protocol from its waiting): the read path's `run_pipeline` awaits the socket on the event loop,
so a list or get takes no worker thread at all, and the write path's `begin`, already in a
worker thread with the ORM, polls.

Up to its Sync a pipeline is one implicit transaction (PostgreSQL's extended protocol): the
first statement opens it, a failed statement makes the server skip the rest, and the Sync ends
it, committing or rolling back. That is what lets the identity statement's `SET LOCAL` settings
cover the query and die with it.

With `prepare`, a statement seen often enough on this connection is sent as a named prepared
statement (Parse once, then Bind/Execute only), the way psycopg's `prepare_threshold` works: for
direct PostgreSQL and poolers that track protocol-level prepared statements (PgBouncer 1.21+).
The server can drop them behind our back: psycopg sends `DEALLOCATE ALL` after a ROLLBACK once
it has prepared statements of its own (the write path on the same pooled connection), and so
does `DISCARD ALL`. The pipeline that finds one missing failed before anything committed (the
Bind is refused, the implicit transaction rolls back at the Sync), so it runs once more with
every statement parsed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import select
from collections import namedtuple
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import abc, errors, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result

# psycopg's placeholder style: `%(name)s` for a value, `%%` for a literal `%`.
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\)s|%)")
_READABLE = select.POLLIN | select.POLLERR | select.POLLHUP
_FAILED = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.PIPELINE_ABORTED)
T = TypeVar("T")

# What an exchange waits for, and what its driver found ready.
READ = 1
WRITE = 2
_POLL_FOR = {READ: _READABLE, READ | WRITE: _READABLE | select.POLLOUT}
Exchange: TypeAlias = Generator[int, int, T]
"""A pipeline's protocol: yields what it waits for, is sent what became ready, returns rows."""


@dataclass(frozen=True)
class Statement:
    """A statement in PostgreSQL's own placeholder style (`$1`...), the order its values bind."""

    sql: bytes
    names: tuple[str, ...]


@lru_cache(maxsize=256)
def statement(sql: str) -> Statement:
    """`sql` with psycopg's named placeholders turned into positional ones (compiled once)."""
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        name = match[1]
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Statement(_PLACEHOLDER.sub(positional, sql).encode(), tuple(names))


@dataclass
class Prepared:
    """One connection's prepared statements, and how often each statement ran unprepared."""

    threshold: int
    names: set[bytes] = field(default_factory=set)
    runs: dict[bytes, int] = field(default_factory=dict)

    def plan(self, sql: bytes, types: Sequence[int]) -> tuple[bytes | None, bool]:
        """How to send the statement this time: its prepared name (None: unprepared, it has not
        run often enough yet) and whether to Parse it first. A name to Parse counts as prepared
        from now on (a repeat later in the same pipeline uses it); `forget` undoes that when
        the Parse failed."""
        name = _statement_name(sql, tuple(types))
        if name in self.names:
            return name, False
        runs = self.runs.get(name, 0) + 1
        self.runs[name] = runs
        if runs <= self.threshold:
            return None, False
        self.names.add(name)
        return name, True

    def forget(self, name: bytes) -> None:
        self.names.discard(name)

    def forget_all(self) -> None:
        """The server holds none of them any more (`DEALLOCATE ALL`, `DISCARD ALL`)."""
        self.names.clear()


@lru_cache(maxsize=256)
def _statement_name(sql: bytes, types: tuple[int, ...]) -> bytes:
    """A name that differs whenever the text or the parameter types do (hashed once each)."""
    digest = hashlib.blake2b(sql + repr(types).encode(), digest_size=12).hexdigest()
    return f"tasks_api_{digest}".encode()


@lru_cache(maxsize=64)
def _row_type(fields: tuple[str, ...]) -> Any:
    return namedtuple("Row", fields, rename=True)  # the columns are known only at run time


async def run_pipeline(
    conn: psycopg.Connection[Any],
    statements: Sequence[tuple[str, Mapping[str, Any]]],
    prepared: Prepared | None = None,
) -> list[list[Any]]:
    """Run `statements` in order as one transaction in one round trip; each one's rows
    (named tuples). The first failure is raised as psycopg would raise it, after the Sync, with
    the connection idle again; a connection the exchange broke (or a cancelled wait left
    mid-exchange) is closed.

    The waiting is the event loop's: the socket is watched by the loop while the exchange is
    in flight, so the read takes no thread and holds no lock while PostgreSQL works.
    """
    return await _drive_async(conn, _parsing_again_if_dropped(conn, statements, prepared))


def begin(
    conn: psycopg.Connection[Any],
    sql: str,
    params: Mapping[str, Any],
    prepared: Prepared | None = None,
) -> list[Any]:
    """BEGIN and `sql` in one round trip; the statement's rows. The transaction stays open for
    what the caller runs next (an explicit BEGIN outlives the Sync). On failure it is rolled
    back, and the connection is idle again (or closed, when the exchange broke it). Blocking:
    the write path runs in a worker thread, with the ORM's statements after it."""
    try:
        return _drive(conn, _parsing_again_if_dropped(conn, [(sql, params)], prepared, begin=True))[
            0
        ]
    except BaseException:
        _roll_back(conn)
        raise


def _parsing_again_if_dropped(
    conn: psycopg.Connection[Any],
    statements: Sequence[tuple[str, Mapping[str, Any]]],
    prepared: Prepared | None,
    *,
    begin: bool = False,
) -> Exchange[list[list[Any]]]:
    """The exchange, once more with every statement parsed again when it found a prepared
    statement the server had dropped (a second round trip, only after the drop)."""
    try:
        return (yield from _exchange(conn, statements, prepared, begin=begin))
    except errors.InvalidSqlStatementName:
        if prepared is None or not prepared.names:
            raise
        prepared.forget_all()
        return (yield from _exchange(conn, statements, prepared, begin=begin))


def _roll_back(conn: psycopg.Connection[Any]) -> None:
    """Leave no transaction open, never hiding the failure that got us here: a connection too
    broken to roll back is closed instead (the pool replaces it)."""
    if conn.closed or conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()


def _exchange(
    conn: psycopg.Connection[Any],
    statements: Sequence[tuple[str, Mapping[str, Any]]],
    prepared: Prepared | None,
    *,
    begin: bool = False,
) -> Exchange[list[list[Any]]]:
    """The protocol of one pipeline, without its waiting: it yields what it waits for (`READ`,
    or `READ | WRITE` while libpq's buffer drains) and is sent back what became ready, so the
    same exchange runs under a blocking poll (`_drive`) or under the event loop
    (`_drive_async`). The way psycopg separates its generators from its waiting functions."""
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    transformer: abc.Transformer = Transformer(conn)
    parsed: list[bytes] = []
    # The first statement must open the transaction, not join one: a block left open (a
    # failed `begin` being repeated) is rolled back first, in this same round trip.
    opening = [b"ROLLBACK"] if pgconn.transaction_status != pq.TransactionStatus.IDLE else []
    if begin:  # never prepared: the statement that opens the transaction block
        opening.append(b"BEGIN")
    pgconn.enter_pipeline_mode()
    try:
        for command in opening:
            pgconn.send_query_params(command, None)
            parsed.append(b"")
        for sql, params in statements:
            parsed.extend(_queue(pgconn, transformer, statement(sql), params, prepared))
        pgconn.pipeline_sync()
        # Send libpq's buffer, reading whatever the server answers meanwhile (so neither
        # side can block on a full buffer).
        while pgconn.flush():
            if (yield READ | WRITE) & READ:
                pgconn.consume_input()
        results: list[pq.abc.PGresult] = []
        while True:  # every statement's result up to the Sync's, in the order they were sent
            while pgconn.is_busy():
                yield READ
                pgconn.consume_input()  # raises OperationalError when the connection is gone
            result = pgconn.get_result()
            if result is None:
                if pgconn.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError(pgconn.get_error_message())
                continue  # the end of one statement's results
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                break
            results.append(result)
        pgconn.exit_pipeline_mode()
    except BaseException:
        conn.close()  # an exchange cut short leaves the protocol state unknown
        raise
    if prepared is not None:
        # A Parse that ran is a prepared statement on the server even if a later statement
        # failed (prepared statements are not transactional); one that did not run is not.
        for name, result in zip(parsed, results, strict=True):
            if name and not _ok(result):
                prepared.forget(name)
    failed = next((r for r in results if r.status == pq.ExecStatus.FATAL_ERROR), None)
    if failed is not None:
        raise error_from_result(failed, encoding=encoding)
    answers = [result for name, result in zip(parsed, results, strict=True) if not name]
    return [_rows(transformer, result, encoding) for result in answers[len(opening) :]]


def _drive(conn: psycopg.Connection[Any], exchange: Exchange[T]) -> T:
    """Run `exchange` to its end, blocking this thread in poll(2) while it waits."""
    fd = conn.pgconn.socket
    poller = select.poll()
    try:
        wait = next(exchange)
        while True:
            poller.register(fd, _POLL_FOR[wait])  # registering again replaces the mask
            events = 0
            for _, happened in poller.poll():
                events |= happened
            wait = exchange.send(
                (READ if events & _READABLE else 0) | (WRITE if events & select.POLLOUT else 0)
            )
    except StopIteration as done:
        result: T = done.value
        return result


async def _drive_async(conn: psycopg.Connection[Any], exchange: Exchange[T]) -> T:
    """Run `exchange` to its end, the event loop watching the socket while it waits. A wait
    cancelled part way closes the exchange, and with it the connection."""
    fd = conn.pgconn.socket
    loop = asyncio.get_running_loop()
    try:
        wait = next(exchange)
        while True:
            wait = exchange.send(await _ready(loop, fd, wait))
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        exchange.close()


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, wait: int) -> int:
    """Once `fd` is readable (or, when asked, writable): which of the two it became."""
    ready: asyncio.Future[int] = loop.create_future()

    def became(what: int) -> None:
        if not ready.done():
            ready.set_result(what)

    loop.add_reader(fd, became, READ)
    if wait & WRITE:
        loop.add_writer(fd, became, WRITE)
    try:
        return await ready
    finally:
        loop.remove_reader(fd)
        if wait & WRITE:
            loop.remove_writer(fd)


def _queue(
    pgconn: pq.abc.PGconn,
    transformer: abc.Transformer,
    stmt: Statement,
    params: Mapping[str, Any],
    prepared: Prepared | None,
) -> list[bytes]:
    """Queue one statement. What was queued, one entry per result to come: a Parse's
    statement name, then b"" for the statement's own result."""
    values = transformer.dump_sequence(
        [params[name] for name in stmt.names], [PyFormat.AUTO] * len(stmt.names)
    )
    types = transformer.types or ()
    formats = transformer.formats
    name, parse = (None, False) if prepared is None else prepared.plan(stmt.sql, types)
    if name is None:
        pgconn.send_query_params(stmt.sql, values, param_types=types, param_formats=formats)
        return [b""]
    if parse:
        pgconn.send_prepare(name, stmt.sql, param_types=types)
    pgconn.send_query_prepared(name, values, param_formats=formats)
    return [name, b""] if parse else [b""]


def _ok(result: pq.abc.PGresult) -> bool:
    return result.status not in _FAILED


def _rows(transformer: abc.Transformer, result: pq.abc.PGresult, encoding: str) -> list[Any]:
    if result.status != pq.ExecStatus.TUPLES_OK:
        return []
    fields = tuple((result.fname(i) or b"?").decode(encoding) for i in range(result.nfields))
    row = _row_type(fields)
    transformer.set_pgresult(result)
    rows: list[Any] = transformer.load_rows(0, result.ntuples, row._make)
    return rows
