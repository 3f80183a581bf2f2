"""UnitOfWork.read on the event loop: PostgreSQL's time is the loop's to spend on others.

list and get await the read (api/tasks/routes.py), so a read must never block the loop: not
while PostgreSQL works, not while it waits for a connection, and a read cut short (cancelled)
must never hand its half-finished connection to the next one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db.engine import PoolConfig, build_engine
from db.unit_of_work import Query, UnitOfWork

WHO_AM_I = Query(
    "SELECT current_user AS role, current_setting('app.user_id', true) AS user_id,"
    " pg_backend_pid() AS pid",
    {},
)


def _sleeping(seconds: float) -> Query:
    return Query("SELECT true AS slept FROM pg_sleep(%(s)s)", {"s": seconds})


@pytest.fixture
def db(database_url: str) -> Iterator[UnitOfWork]:
    """One pooled connection, opened up front; a one-second wait for it, then a timeout."""
    uow = UnitOfWork(
        build_engine(database_url, PoolConfig(size=1, max_overflow=0, timeout_seconds=1))
    )
    uow.engine.raw_connection().close()
    yield uow
    uow.dispose()


async def _ticking_while(work: asyncio.Future[Any]) -> int:
    """How often a 10 ms timer fired on the loop while `work` ran."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.01)
        ticks += 1
    await work
    return ticks


def test_while_postgresql_works_on_a_read_the_loop_serves_others(
    db: UnitOfWork, alice: str
) -> None:
    async def main() -> int:
        return await _ticking_while(asyncio.ensure_future(db.read(alice, _sleeping(0.3))))

    assert asyncio.run(main()) >= 10  # 300 ms of PostgreSQL; a blocked loop would tick once


def test_a_read_on_an_idle_pooled_connection_takes_no_worker_thread(
    db: UnitOfWork, alice: str
) -> None:
    async def main() -> list[str]:
        await db.read(alice, WHO_AM_I)
        return [t.name for t in threading.enumerate() if t.name.startswith("AnyIO worker")]

    assert asyncio.run(main()) == []


def test_reads_beyond_the_pool_wait_their_turn_without_stalling_the_loop(
    db: UnitOfWork, alice: str
) -> None:
    # One connection and one token of the blocking handlers' budget: the other three reads
    # wait for the token on the loop. Waiting in the pool instead would block the loop, and
    # with it the read holding the connection, until the pool's one-second timeout.
    async def main() -> tuple[list[object], int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        reads = asyncio.gather(*(db.read(alice, _sleeping(0.05)) for _ in range(4)))
        ticks = await _ticking_while(reads)
        return list(reads.result()), ticks

    results, ticks = asyncio.run(main())
    assert [rows[0].slept for rows in results] == [True] * 4  # type: ignore[index]
    assert ticks >= 10


def _cancel_a_read_then_read(db: UnitOfWork, user: str) -> tuple[int, Any]:
    """A read cancelled while PostgreSQL works on it, then a read: the first read's backend
    and the last read's row."""

    async def main() -> tuple[int, Any]:
        (before,) = await db.read(user, WHO_AM_I)
        slow = asyncio.ensure_future(db.read(user, _sleeping(1)))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        (after,) = await db.read(user, WHO_AM_I)
        return before.pid, after

    return asyncio.run(main())


def test_a_cancelled_read_is_discarded_without_an_error_from_the_pool(
    db: UnitOfWork, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Handed back as it was, the closed connection would fail the pool's reset-on-return,
    # which logs an error with a traceback before it discards the connection.
    with caplog.at_level(logging.WARNING, logger="sqlalchemy.pool"):
        _cancel_a_read_then_read(db, alice)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy")] == []


def test_a_cancelled_read_never_returns_its_connection_to_the_pool(
    db: UnitOfWork, alice: str
) -> None:
    before_pid, after = _cancel_a_read_then_read(db, alice)
    assert after.pid != before_pid
    assert (after.role, after.user_id) == ("tasks_app", alice)


def test_a_read_that_waits_longer_than_the_pool_timeout_for_its_turn_is_unavailable(
    database_url: str, alice: str
) -> None:
    # The token is the connection: waiting for one past the pool's timeout is the same 503
    # (db.errors: unavailable, cause pool_timeout) as waiting for a connection in the pool.
    uow = UnitOfWork(
        build_engine(database_url, PoolConfig(size=1, max_overflow=0, timeout_seconds=0.1))
    )

    async def main() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        holding = asyncio.ensure_future(uow.read(alice, _sleeping(0.5)))
        await asyncio.sleep(0.05)
        try:
            with pytest.raises(PoolTimeoutError):
                await uow.read(alice, WHO_AM_I)
        finally:
            await holding

    try:
        asyncio.run(main())
    finally:
        uow.dispose()
