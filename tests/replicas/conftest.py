"""A real primary and streaming hot standby for the session, migrated, and an app reading from it.

The pair is private to these tests (tests/support/standby.py), so pausing replay, stopping the
standby or changing roles touches nothing else. Every test that pauses replay or stops the
standby puts it back (`replay_paused`, `standby_stopped`), so tests stay independent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from db.migrate import upgrade_to_head
from db.replicas import ReplicaSet
from db.unit_of_work import UnitOfWork
from tests.conftest import make_settings
from tests.support.standby import ReplicatedPair, available, replicated_pair

DATABASE = "tasks"


@pytest.fixture(scope="session")
def pair() -> Iterator[ReplicatedPair]:
    if not available():
        pytest.fail("the standby tests need PostgreSQL 15's initdb, pg_ctl and pg_basebackup")
    with replicated_pair() as running:
        with psycopg.connect(running.primary.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE} ENCODING 'UTF8' TEMPLATE template0")
        upgrade_to_head(running.primary.url_for(DATABASE))
        running.wait_for_replay()
        yield running


@pytest.fixture(scope="session")
def primary_url(pair: ReplicatedPair) -> str:
    return pair.primary.url_for(DATABASE)


@pytest.fixture(scope="session")
def standby_url(pair: ReplicatedPair) -> str:
    return pair.standby.url_for(DATABASE)


@pytest.fixture
def replay_paused(pair: ReplicatedPair) -> Iterator[None]:
    """Replay stopped on the standby for the test (WAL still arrives); resumed, caught up after."""
    pair.pause_replay()
    try:
        yield
    finally:
        pair.resume_replay()
        pair.wait_for_replay()


@contextmanager
def standby_stopped(pair: ReplicatedPair) -> Iterator[None]:
    pair.standby.stop("fast")
    try:
        yield
    finally:
        pair.standby.start()
        pair.wait_for_replay()


@pytest.fixture
def unit_of_work(primary_url: str, standby_url: str) -> Iterator[UnitOfWork]:
    """A unit of work over the pair whose monitor is driven by the test (`poll_once`), with a
    lag bound of zero: any replay behind the primary's last sample is too far."""
    from db.engine import build_engine

    replicas = ReplicaSet(primary_url, [standby_url], max_lag_seconds=0.0)
    uow = UnitOfWork(build_engine(primary_url), replicas=replicas)
    replicas.poll_once()
    try:
        yield uow
    finally:
        uow.dispose()


@pytest.fixture
def replica_app(primary_url: str, standby_url: str, jwt_secret: str) -> Callable[..., Any]:
    """`with replica_app(max_lag_ms=...) as client:` an app whose reads may use the standby."""

    @contextmanager
    def open_app(**overrides: Any) -> Iterator[TestClient]:
        settings = make_settings(
            primary_url,
            jwt_secret,
            read_replica_urls=(standby_url,),
            **overrides,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    return open_app


def owner_insert(url: str, user_id: str, title: str) -> str:
    """A row written on the primary behind the API's back (no token): the standby's copy lags."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO task (user_id, title) VALUES (%s, %s) RETURNING id::text", (user_id, title)
        ).fetchone()
    assert row is not None
    return str(row[0])
