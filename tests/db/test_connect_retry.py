"""New connections are retried with backoff within a budget, unless no retry could help."""

from __future__ import annotations

import socket
from collections.abc import Callable

import psycopg
import pytest

from db.engine import retry_connect
from tests.support.postgres import url_for_database


def counting(connect: Callable[[], psycopg.Connection]) -> tuple[list[int], Callable[[], object]]:
    attempts: list[int] = []

    def attempt() -> object:
        attempts.append(1)
        return connect()

    return attempts, attempt


def test_a_refused_connection_is_retried_until_the_budget_is_spent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempts, attempt = counting(
        lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/x", connect_timeout=1)
    )
    with pytest.raises(psycopg.OperationalError):
        retry_connect(attempt, budget_seconds=0.5)
    assert len(attempts) > 1


def test_a_missing_database_is_not_retried(admin_url: str) -> None:
    missing = url_for_database(admin_url, "tasks_no_such_database")
    attempts, attempt = counting(lambda: psycopg.connect(missing))
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        retry_connect(attempt, budget_seconds=5)
    assert len(attempts) == 1


def test_a_connection_that_succeeds_is_returned_at_once(admin_url: str) -> None:
    attempts, attempt = counting(lambda: psycopg.connect(admin_url))
    conn = retry_connect(attempt, budget_seconds=5)
    assert isinstance(conn, psycopg.Connection)
    conn.close()
    assert len(attempts) == 1
