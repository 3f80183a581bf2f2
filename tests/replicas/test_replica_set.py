"""db.replicas and UnitOfWork.read against a real streaming standby.

Where a read ran is read from inside its own pipeline: `pg_is_in_recovery()` is true only on the
standby, so a query returning it (test-only) proves which server answered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import text
from sqlmodel import Session

from db.identity import TransactionLimits
from db.replicas import ReplicaSet, format_lsn, parse_lsn
from db.unit_of_work import Query, ReadServed, UnitOfWork
from tests.replicas.conftest import owner_insert, standby_stopped
from tests.support.standby import ReplicatedPair

WHERE_AM_I = Query("SELECT pg_is_in_recovery() AS in_recovery", {})
OWN_TITLES = Query("SELECT title FROM task WHERE user_id = %(user_id)s ORDER BY title", {})


def poll_until(replicas: ReplicaSet, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the monitor judge until `condition` holds (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        replicas.poll_once()
        if condition():
            return
        assert time.monotonic() < deadline, f"not reached in {timeout}s: {replicas.replicas}"
        time.sleep(0.02)


def in_rotation(uow: UnitOfWork) -> bool:
    assert uow.replicas is not None
    return uow.replicas.replicas[0].state.in_rotation


def served_on(uow: UnitOfWork) -> list[ReadServed]:
    served: list[ReadServed] = []
    uow.read_listeners.append(served.append)
    return served


def read(
    uow: UnitOfWork,
    user_id: str,
    query: Query,
    *,
    from_replica: bool = False,
    at_least: int | None = None,
) -> list[Any]:
    """`uow.read`, awaited to its rows (these tests are synchronous)."""
    return asyncio.run(uow.read(user_id, query, from_replica=from_replica, at_least=at_least))


def titles(rows: list[object]) -> list[str]:
    return [str(row.title) for row in rows]  # type: ignore[attr-defined]


def test_lsn_text_round_trips() -> None:
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(parse_lsn("0/3000028")) == "0/3000028"


def test_a_replica_of_an_idle_primary_is_in_rotation(unit_of_work: UnitOfWork) -> None:
    assert unit_of_work.replicas is not None
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))
    assert unit_of_work.replicas.replicas[0].state.lag_seconds == 0.0


def test_a_replica_read_runs_on_the_standby(unit_of_work: UnitOfWork) -> None:
    assert unit_of_work.replicas is not None
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))
    served = served_on(unit_of_work)
    rows = read(unit_of_work, "alice", WHERE_AM_I, from_replica=True)
    assert rows[0].in_recovery is True
    assert served == [ReadServed("replica0", None)]


def test_a_read_not_marked_for_replicas_runs_on_the_primary(unit_of_work: UnitOfWork) -> None:
    rows = read(unit_of_work, "alice", WHERE_AM_I)
    assert rows[0].in_recovery is False


def test_the_identity_statement_opens_every_replica_transaction(
    unit_of_work: UnitOfWork, primary_url: str, pair: ReplicatedPair
) -> None:
    user = f"carol-{uuid.uuid4().hex[:8]}"
    owner_insert(primary_url, user, "mine")
    owner_insert(primary_url, f"other-{user}", "theirs")
    pair.wait_for_replay()
    assert unit_of_work.replicas is not None
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))
    identity = Query(
        "SELECT current_user AS role, current_setting('app.user_id') AS user_id,"
        " pg_is_in_recovery() AS in_recovery, (SELECT count(*) FROM task) AS visible",
        {},
    )
    row = read(unit_of_work, user, identity, from_replica=True)[0]
    assert (row.role, row.user_id, row.in_recovery, row.visible) == ("tasks_app", user, True, 1)


def test_a_replica_behind_the_bound_leaves_rotation(
    unit_of_work: UnitOfWork, primary_url: str, replay_paused: None
) -> None:
    owner_insert(primary_url, "dave", "written while replay is paused")
    assert unit_of_work.replicas is not None
    poll_until(unit_of_work.replicas, lambda: not in_rotation(unit_of_work))
    served = served_on(unit_of_work)
    assert read(unit_of_work, "dave", WHERE_AM_I, from_replica=True)[0].in_recovery is False
    assert served == [ReadServed("primary", "lag")]


def test_a_replica_that_catches_up_returns_to_rotation(
    unit_of_work: UnitOfWork, primary_url: str, pair: ReplicatedPair
) -> None:
    assert unit_of_work.replicas is not None
    pair.pause_replay()
    try:
        owner_insert(primary_url, "erin", "written while replay is paused")
        poll_until(unit_of_work.replicas, lambda: not in_rotation(unit_of_work))
    finally:
        pair.resume_replay()
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))
    assert read(unit_of_work, "erin", WHERE_AM_I, from_replica=True)[0].in_recovery is True


def test_a_read_after_an_lsn_the_replica_has_not_replayed_runs_on_the_primary(
    unit_of_work: UnitOfWork, replay_paused: None
) -> None:
    user = f"frank-{uuid.uuid4().hex[:8]}"

    def create(session: Session) -> None:
        session.execute(text("INSERT INTO task (user_id, title) VALUES (:u, 'x')"), {"u": user})

    written = unit_of_work.write(user, create)
    served = served_on(unit_of_work)
    query = Query(OWN_TITLES.sql, {"user_id": user})
    assert titles(read(unit_of_work, user, query, from_replica=True, at_least=written.lsn)) == ["x"]
    assert served[-1].target == "primary"


def test_the_commit_lsn_is_reached_by_the_standby_once_replayed(
    unit_of_work: UnitOfWork, pair: ReplicatedPair
) -> None:
    user = f"gina-{uuid.uuid4().hex[:8]}"
    written = unit_of_work.write(user, lambda session: None)
    pair.wait_for_replay()
    with psycopg.connect(pair.standby.url_for("tasks")) as conn:
        row = conn.execute(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (format_lsn(written.lsn),)
        ).fetchone()
    assert row == (True,)


def test_the_replay_check_in_the_pipeline_refuses_a_stale_replica(
    unit_of_work: UnitOfWork, primary_url: str, replay_paused: None
) -> None:
    """Even when the monitor's view is out of date (another server behind the same URL, say),
    the pipeline's own replay check sends the read to the primary."""
    user = f"hank-{uuid.uuid4().hex[:8]}"
    owner_insert(primary_url, user, "unreplayed")
    replica = unit_of_work.replicas.replicas[0] if unit_of_work.replicas else None
    assert replica is not None
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    assert row is not None
    target = parse_lsn(str(row[0]))
    # Pretend the monitor believes the standby is there already.
    replica.state = type(replica.state)(True, target, 0.0, "in rotation")
    served = served_on(unit_of_work)
    query = Query(OWN_TITLES.sql, {"user_id": user})
    assert titles(read(unit_of_work, user, query, from_replica=True, at_least=target)) == [
        "unreplayed"
    ]
    assert served == [ReadServed("primary", "token")]


def test_a_standby_that_stops_mid_run_hands_its_reads_to_the_primary(
    unit_of_work: UnitOfWork, pair: ReplicatedPair
) -> None:
    assert unit_of_work.replicas is not None
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))
    # A pooled connection to the standby, which its shutdown will break.
    assert read(unit_of_work, "ivan", WHERE_AM_I, from_replica=True)[0].in_recovery is True
    served = served_on(unit_of_work)
    with standby_stopped(pair):
        assert read(unit_of_work, "ivan", WHERE_AM_I, from_replica=True)[0].in_recovery is False
        assert served == [ReadServed("primary", "replica_error")]
        assert not in_rotation(unit_of_work)
        unit_of_work.replicas.poll_once()
        assert unit_of_work.replicas.replicas[0].state.reason == "unreachable"
        assert read(unit_of_work, "ivan", WHERE_AM_I, from_replica=True)[0].in_recovery is False
    poll_until(unit_of_work.replicas, lambda: in_rotation(unit_of_work))


def test_a_statement_cancelled_on_the_standby_keeps_it_in_rotation(
    primary_url: str, standby_url: str
) -> None:
    """One tenant's slow query (here a timeout that fires on the standby alone) sends that read
    to the primary; the standby stays in rotation for everyone else."""
    from db.engine import build_engine

    replicas = ReplicaSet(primary_url, [standby_url], max_lag_seconds=0.0)
    uow = UnitOfWork(
        build_engine(primary_url), TransactionLimits(statement_timeout_ms=100), replicas
    )
    slow_on_standby = Query(
        "SELECT pg_is_in_recovery() AS in_recovery,"
        " CASE WHEN pg_is_in_recovery() THEN pg_sleep(2) END AS slept",
        {},
    )
    try:
        poll_until(replicas, lambda: in_rotation(uow))
        served = served_on(uow)
        rows = read(uow, "judy", slow_on_standby, from_replica=True)
        assert rows[0].in_recovery is False
        assert served == [ReadServed("primary", "replica_error")]
        assert in_rotation(uow)
    finally:
        uow.dispose()


def test_a_replica_down_from_the_start_is_out_of_rotation(primary_url: str) -> None:
    from tests.support.server import free_port

    replicas = ReplicaSet(
        primary_url, [f"postgresql://postgres@127.0.0.1:{free_port()}/tasks"], max_lag_seconds=1.0
    )
    try:
        replicas.poll_once()
        assert replicas.choose().replica is None
        assert replicas.replicas[0].state.reason == "unreachable"
    finally:
        replicas.dispose()


def test_a_server_not_in_recovery_is_not_used_as_a_replica(primary_url: str) -> None:
    replicas = ReplicaSet(primary_url, [primary_url], max_lag_seconds=1.0)
    try:
        replicas.poll_once()
        assert replicas.choose().replica is None
        assert replicas.replicas[0].state.reason.startswith("not a standby")
    finally:
        replicas.dispose()


def test_a_verdict_older_than_its_lifetime_no_longer_vouches_for_a_replica(
    unit_of_work: UnitOfWork,
) -> None:
    """A monitor stuck on a silent network must not keep a replica in rotation on old news."""
    assert unit_of_work.replicas is not None
    replica = unit_of_work.replicas.replicas[0]
    stale_since = time.monotonic() - unit_of_work.replicas.verdict_lifetime_seconds - 1
    replica.state = type(replica.state)(True, replica.state.replay_lsn, 0.0, "old", stale_since)
    assert unit_of_work.replicas.choose().replica is None
    assert read(unit_of_work, "jo", WHERE_AM_I, from_replica=True)[0].in_recovery is False
