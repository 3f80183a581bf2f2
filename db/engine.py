"""Engine construction: one bounded pool per process, safe behind a transaction-mode pooler.

Also where connection trouble is absorbed before a request sees it: a new connection is retried
with backoff for a short budget (and a stale pooled one is replaced by the unit of work, or on
checkout when pre-ping is asked for), so a database restart or a Neon compute waking up costs
latency, not an error.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

import anyio
import psycopg
from anyio.lowlevel import RunVar
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

from db.errors import is_transient_connect_error

log = logging.getLogger(__name__)

T = TypeVar("T")

PrepareMode: TypeAlias = bool | Literal["auto"]
"""Server-side prepared statements: always, never, or `auto` (only on a connection that reaches
one PostgreSQL backend for its whole life, see `reaches_one_backend`)."""

# psycopg prepares a statement on its fifth run on a connection (its own default threshold).
PREPARE_THRESHOLD = 5


def sqlalchemy_url(url: str) -> str:
    """Accept the plain `postgresql://...` URL Neon's console gives; use the psycopg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername!r}; use postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class PoolConfig:
    size: int = 10
    max_overflow: int = 10
    # How long a request waits for a free connection before it is answered 503.
    timeout_seconds: float = 5.0
    connect_timeout_seconds: int = 5
    # Total time spent retrying a refused or dropped connection attempt before giving up.
    connect_retry_budget_seconds: float = 2.0
    # Off: the unit of work replaces a pooled connection found dead at its first statement
    # (db/unit_of_work.py), which a read or an unstarted transaction can repeat safely. A pre-ping
    # costs two round trips per request (psycopg opens a transaction for its SELECT 1) and
    # would put that SELECT ahead of the identity statement.
    pre_ping: bool = False
    prepared_statements: PrepareMode = "auto"


def retry_connect(connect: Callable[[], T], budget_seconds: float) -> T:
    """Call `connect` until it succeeds, backing off exponentially, for at most `budget_seconds`."""
    deadline = time.monotonic() + budget_seconds
    delay = 0.05
    while True:
        try:
            return connect()
        except psycopg.OperationalError as exc:
            remaining = deadline - time.monotonic()
            if not is_transient_connect_error(exc) or remaining <= 0:
                raise
            log.info("database connection failed, retrying in %.2fs: %s", delay, exc)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)


def wait_for_database(url: str, budget_seconds: float, connect_timeout_seconds: int = 5) -> None:
    """Return once the database accepts a connection; raise if it did not within the budget."""
    conninfo = make_url(sqlalchemy_url(url)).set(drivername="postgresql")
    conn = retry_connect(
        lambda: psycopg.connect(
            conninfo.render_as_string(hide_password=False), connect_timeout=connect_timeout_seconds
        ),
        budget_seconds,
    )
    conn.close()


def build_engine(url: str, config: PoolConfig | None = None) -> Engine:
    """A bounded pool whose dead connections are replaced, so one Neon scale-to-zero does not
    fail a request.

    Prepared statements (psycopg prepares a statement on its fifth run, the pipelined read
    included) save PostgreSQL the parse and plan of every statement: a third of its CPU per
    list (docs/performance.md). A transaction-mode pooler that does not track them (PgBouncer
    before 1.21) hands the next transaction a server connection that never saw them, so with
    `auto`, the default, each new connection prepares only if it reaches PostgreSQL itself
    (`reaches_one_backend`). `True` (DB_PREPARED_STATEMENTS=true) also prepares behind a pooler,
    for PgBouncer 1.21+ with `max_prepared_statements` > 0; `False` never prepares.
    """
    cfg = config or PoolConfig()
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=cfg.size,
        max_overflow=cfg.max_overflow,
        pool_timeout=cfg.timeout_seconds,
        pool_pre_ping=cfg.pre_ping,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": cfg.connect_timeout_seconds,
            "prepare_threshold": PREPARE_THRESHOLD if cfg.prepared_statements else None,
            "application_name": "tasks-api",
        },
    )

    if cfg.pre_ping:
        _pings_on_checkout.add(engine)

    @event.listens_for(engine, "do_connect")
    def _connect_with_retry(
        dialect: Dialect, _: ConnectionPoolEntry, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        if _on_the_event_loop.get():
            raise WouldConnect
        return retry_connect(
            lambda: dialect.connect(*cargs, **cparams), cfg.connect_retry_budget_seconds
        )

    found: list[bool] = []  # what `auto` last found, so that the log says it once per change

    @event.listens_for(engine, "connect")
    def _stamp(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["connected_at"] = time.monotonic()
        record.info["just_opened"] = True
        if cfg.prepared_statements != "auto":
            return
        direct = reaches_one_backend(dbapi_connection)
        if not direct:
            dbapi_connection.prepare_threshold = None
        if found != [direct]:
            found[:] = [direct]
            log.info("%s", _AUTO_FOUND[direct])

    @event.listens_for(engine, "checkout")
    def _refuse_retired(_: Any, record: ConnectionPoolEntry, __: PoolProxiedConnection) -> None:
        # SQLAlchemy's documented way to have the pool replace a connection on checkout.
        # A connection opened for this very checkout is kept: while the database comes back,
        # other requests keep retiring, and one of them landing between this connect and this
        # check would refuse every replacement in turn until the pool gave up (a 500). If it
        # is dead after all, the unit of work's first statement finds out and repeats.
        if record.info.pop("just_opened", False):
            return
        if record.info.get("connected_at", 0.0) <= _retired_before.get(engine, -1.0):
            raise DisconnectionError("connection opened before the last connection loss")

    return engine


# What DB_PREPARED_STATEMENTS=auto decided, for the operator reading the service's log.
_AUTO_FOUND = {
    True: "prepared statements on: the connection reaches PostgreSQL itself"
    " (DB_PREPARED_STATEMENTS=auto)",
    False: "prepared statements off: a pooler answers for PostgreSQL (DB_PREPARED_STATEMENTS="
    "auto; set it to true if the pooler tracks them, as PgBouncer 1.21+ with"
    " max_prepared_statements does)",
}


def reaches_one_backend(conn: psycopg.Connection[Any]) -> bool:
    """Whether every transaction on `conn` runs on the one PostgreSQL backend it was opened to.

    PostgreSQL's startup answer (BackendKeyData) carries its backend's process id; a pooler
    answers with a key of its own, so that it can route cancel requests to whichever server
    connection is running the client's statement. The id and `pg_backend_pid()` agree only
    when nothing between multiplexes server connections: a direct connection, or a plain TCP
    proxy. Any pooler (PgBouncer, Neon's, Supavisor) is taken as unable to keep prepared
    statements, which is the safe mistake for one that could. Once per new connection.
    """
    row = conn.execute("SELECT pg_backend_pid()", prepare=False).fetchone()
    conn.rollback()
    return row is not None and row[0] == conn.info.backend_pid


# Per engine: connections opened at or before this moment are replaced when next checked out.
_retired_before: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def retire_pooled_connections(engine: Engine) -> None:
    """Have the pool replace, on their next checkout, every connection opened until now.

    What kills one pooled connection (a restart, a Neon scale-to-zero, a failover) kills every
    connection opened before it; SQLAlchemy does the same for disconnects it sees itself, but
    the raw pipelined read path and the first-statement retry see theirs first.
    """
    _retired_before[engine] = time.monotonic()


class WouldConnect(Exception):
    """The pool would have opened a connection (or reopened a retired, recycled or invalidated
    one) on the event loop, which would stall every request the loop serves meanwhile."""


_on_the_event_loop: ContextVar[bool] = ContextVar("on_the_event_loop", default=False)
# Engines that ping each connection on checkout (tests only): a round trip, so never on the loop.
_pings_on_checkout: weakref.WeakSet[Engine] = weakref.WeakSet()
# Threads that open connections for the event loop's checkouts: a limiter of their own (one per
# event loop, as anyio's own default limiter is), so they never wait behind the requests, each
# holding a token of the default limiter, that they open connections for.
_OPENERS: RunVar[anyio.CapacityLimiter] = RunVar("tasks_api_connection_openers")
_OPENERS_AT_ONCE = 4


def _openers() -> anyio.CapacityLimiter:
    try:
        return _OPENERS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_OPENERS_AT_ONCE)
        _OPENERS.set(limiter)
        return limiter


async def checkout(engine: Engine) -> PoolProxiedConnection:
    """A pooled connection for work on the event loop, without ever blocking the loop.

    An idle pooled connection is taken on the loop itself: the pool's queue, its checkout
    events and no I/O. Opening one (the pool is not full yet, or the connection was retired,
    recycled or invalidated) happens in a worker thread instead, as does a checkout that pings
    and one that finds no connection idle (it would wait for one to come back). The caller
    bounds how many connections it holds at once (`db.unit_of_work`), so that last case is
    only a connection held outside that bound.
    """
    pool = engine.pool
    idle = isinstance(pool, QueuePool) and pool.checkedin() > 0
    if idle and engine not in _pings_on_checkout:
        on_loop = _on_the_event_loop.set(True)
        try:
            return engine.raw_connection()
        except WouldConnect:
            pass  # the pool put its entry back; a thread opens it
        finally:
            _on_the_event_loop.reset(on_loop)
    return await anyio.to_thread.run_sync(engine.raw_connection, limiter=_openers())


def pool_timeout(engine: Engine) -> float | None:
    """How long a request may wait for one of `engine`'s connections (DB_POOL_TIMEOUT_SECONDS)."""
    pool = engine.pool
    return pool.timeout() if isinstance(pool, QueuePool) else None
