"""DB_PREPARED_STATEMENTS: `auto` (the default) prepares only on a connection that reaches
PostgreSQL itself; `true` and `false` are the operator's choice. Behind a real pooler:
tests/pooler/test_prepared_statements.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine

from db.engine import PREPARE_THRESHOLD, PoolConfig, PrepareMode, build_engine, reaches_one_backend
from db.unit_of_work import Query, UnitOfWork

WHO_AM_I = Query("SELECT current_user AS role, %(tag)s::text AS tag", {"tag": "x"})


def driver_of(engine: Engine) -> psycopg.Connection[Any]:
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


@pytest.fixture
def engine_with(database_url: str) -> Iterator[Any]:
    engines: list[Engine] = []

    def build(mode: PrepareMode) -> Engine:
        engine = build_engine(
            database_url, PoolConfig(size=1, max_overflow=0, prepared_statements=mode)
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.dispose()


def test_the_default_is_auto() -> None:
    assert PoolConfig().prepared_statements == "auto"


def test_a_direct_connection_reaches_one_backend(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert reaches_one_backend(conn)


def test_the_check_leaves_the_connection_outside_any_transaction(database_url: str) -> None:
    """The identity statement must still open the first transaction a request runs."""
    with psycopg.connect(database_url) as conn:
        reaches_one_backend(conn)
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_auto_prepares_on_a_direct_connection(engine_with: Any) -> None:
    assert driver_of(engine_with("auto")).prepare_threshold == PREPARE_THRESHOLD


def test_auto_prepares_the_hot_read_on_a_direct_connection(engine_with: Any) -> None:
    db = UnitOfWork(engine_with("auto"))
    for _ in range(PREPARE_THRESHOLD + 2):
        (row,) = asyncio.run(db.read("alice", WHO_AM_I))
        assert (row.role, row.tag) == ("tasks_app", "x")
    with db.engine.connect() as conn:
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").all()
    assert any("current_user AS role" in statement for (statement,) in prepared)


def test_true_prepares(engine_with: Any) -> None:
    assert driver_of(engine_with(True)).prepare_threshold == PREPARE_THRESHOLD


def test_false_never_prepares(engine_with: Any) -> None:
    db = UnitOfWork(engine_with(False))
    for _ in range(PREPARE_THRESHOLD + 2):
        asyncio.run(db.read("alice", WHO_AM_I))
    assert driver_of(db.engine).prepare_threshold is None
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar() == 0


def test_auto_says_once_in_the_log_what_it_found(
    engine_with: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = engine_with("auto")
    with caplog.at_level(logging.INFO, logger="db.engine"):
        with engine.connect():
            pass
        engine.dispose()  # the next checkout opens a new connection: checked, not announced
        with engine.connect():
            pass
    said = [r.getMessage() for r in caplog.records if "prepared statements" in r.getMessage()]
    assert said == [
        "prepared statements on: the connection reaches PostgreSQL itself"
        " (DB_PREPARED_STATEMENTS=auto)"
    ]
