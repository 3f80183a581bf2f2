"""db.engine.checkout: the event loop takes an idle pooled connection itself, never opens one.

Opening a connection is a TCP (and on Neon a TLS) handshake plus authentication: done on the
loop, it would stall every request the loop serves meanwhile. So the loop takes only what the
pool already holds, and anything that would open or ping a connection moves to a worker thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from db.engine import PoolConfig, build_engine, checkout, retire_pooled_connections


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0, timeout_seconds=1))
    yield engine
    engine.dispose()


def _threads_on(engine: Engine, name: str) -> list[int]:
    """The thread each `name` pool event ran on, from now on."""
    seen: list[int] = []

    def record(*_: Any) -> None:
        seen.append(threading.get_ident())

    event.listen(engine, name, record)
    return seen


def _check_out_and_in(engine: Engine) -> int:
    """One checkout and checkin from a fresh event loop; the loop's thread."""

    async def once() -> int:
        (await checkout(engine)).close()
        return threading.get_ident()

    return asyncio.run(once())


def _fill(engine: Engine) -> None:
    engine.raw_connection().close()  # opened in this thread, with no loop running


def test_an_idle_pooled_connection_is_checked_out_on_the_loop(engine: Engine) -> None:
    _fill(engine)
    checkouts = _threads_on(engine, "checkout")
    connects = _threads_on(engine, "connect")
    loop_thread = _check_out_and_in(engine)
    assert checkouts == [loop_thread]
    assert connects == []


def test_a_connection_the_pool_must_open_is_opened_in_a_worker_thread(engine: Engine) -> None:
    connects = _threads_on(engine, "connect")
    loop_thread = _check_out_and_in(engine)
    assert len(connects) == 1
    assert connects[0] != loop_thread


def test_a_retired_connection_is_reopened_in_a_worker_thread(engine: Engine) -> None:
    _fill(engine)
    retire_pooled_connections(engine)
    connects = _threads_on(engine, "connect")
    loop_thread = _check_out_and_in(engine)
    assert len(connects) == 1
    assert connects[0] != loop_thread


def test_an_open_refused_on_the_loop_gives_its_place_in_the_pool_back(engine: Engine) -> None:
    # One connection at most, no overflow, a one-second wait: a place the refused open kept
    # would make the next checkout time out.
    for _ in range(3):
        retire_pooled_connections(engine)
        _check_out_and_in(engine)
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]


def test_a_checkout_that_pings_is_made_in_a_worker_thread(database_url: str) -> None:
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0, pre_ping=True))
    try:
        _fill(engine)
        checkouts = _threads_on(engine, "checkout")
        loop_thread = _check_out_and_in(engine)
        assert len(checkouts) == 1
        assert checkouts[0] != loop_thread
    finally:
        engine.dispose()


def test_waiting_for_a_connection_held_elsewhere_happens_off_the_loop(engine: Engine) -> None:
    # The pool's one connection is held outside any budget: the checkout must wait for it
    # (here until the pool's one-second timeout) without stopping the loop's other work.
    async def main() -> int:
        waiting = asyncio.ensure_future(checkout(engine))
        ticks = 0
        while not waiting.done():
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(PoolTimeoutError):
            await waiting
        return ticks

    held = engine.raw_connection()
    try:
        assert asyncio.run(main()) >= 20
    finally:
        held.close()
