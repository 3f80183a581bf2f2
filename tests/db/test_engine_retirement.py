"""Retiring pooled connections: after one is found dead, every older one is replaced on checkout."""

from __future__ import annotations

from sqlalchemy import event, text

from db.engine import PoolConfig, build_engine, retire_pooled_connections


def backend_pid(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_opened_before_retirement_is_replaced_at_its_next_checkout(
    database_url: str,
) -> None:
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0))
    try:
        before = backend_pid(engine)
        retire_pooled_connections(engine)
        after = backend_pid(engine)
    finally:
        engine.dispose()
    assert after != before


def test_without_retirement_the_pooled_connection_is_reused(database_url: str) -> None:
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0))
    try:
        first, second = backend_pid(engine), backend_pid(engine)
    finally:
        engine.dispose()
    assert first == second


def test_a_connection_opened_after_retirement_is_kept(database_url: str) -> None:
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0))
    try:
        backend_pid(engine)
        retire_pooled_connections(engine)
        fresh = backend_pid(engine)
        again = backend_pid(engine)
    finally:
        engine.dispose()
    assert fresh == again


def test_a_connection_opened_for_a_checkout_is_kept_though_a_retirement_follows_its_connect(
    database_url: str,
) -> None:
    """While the database comes back, requests that find dead connections keep retiring; one
    landing between a replacement's connect and its checkout must not refuse it (SQLAlchemy
    gives up after three refusals: a 500)."""
    engine = build_engine(database_url, PoolConfig(size=1, max_overflow=0))
    event.listen(engine, "connect", lambda *_: retire_pooled_connections(engine))
    try:
        first = backend_pid(engine)
        retire_pooled_connections(engine)
        second = backend_pid(engine)
    finally:
        engine.dispose()
    assert second != first
