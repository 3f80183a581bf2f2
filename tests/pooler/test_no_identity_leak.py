"""No identity leaks through a real transaction-mode pooler (PgBouncer, as on Neon).

Many users' requests run concurrently through `tasks-api serve` whose DATABASE_URL is the
pooler: a few server connections carry every user's transactions in turn. No response may show
another user's row, and a transaction that sets no identity must find none left behind.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx2
import psycopg
import pytest

from tests.pooler.pgbouncer import SHARED_POOL_SIZE, Pooler
from tests.support.identity import act_as as open_as_user
from tests.support.server import RunningServer, base_env, serve

USERS = 16
ROUNDS = 4
Mint = Callable[..., str]


@dataclass
class UserRun:
    """What one user did and saw."""

    user: str
    own_ids: set[str] = field(default_factory=set)
    bodies: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


# The service as deployed behind each pooler: its default behind PgBouncer 1.18, and with
# prepared statements on behind a PgBouncer that tracks them (1.21+, as Neon's pooler is).
POOLED_SERVICES = {
    "pgbouncer-1.18-default": ("pooler", {}),
    "pgbouncer-1.24-prepared": ("tracking_pooler", {"DB_PREPARED_STATEMENTS": "true"}),
}


@pytest.fixture(params=sorted(POOLED_SERVICES))
def server(
    request: pytest.FixtureRequest, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    pooler_fixture, settings = POOLED_SERVICES[request.param]
    pooler: Pooler = request.getfixturevalue(pooler_fixture)
    env = base_env(
        DATABASE_URL=pooler.url,
        JWT_SECRET=jwt_secret,
        RATE_LIMIT="off",
        DB_POOL_SIZE="8",
        DB_POOL_MAX_OVERFLOW="8",
        **settings,
    )
    with serve(env, tmp_path_factory.mktemp("pooled") / "serve.log") as running:
        yield running


def act_as(
    server: RunningServer,
    token: str,
    run: UserRun,
    start: threading.Barrier,
    foreign: Callable[[], list[str]],
) -> UserRun:
    """Create, list, read, change and probe, interleaved with every other user."""
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{server.base_url}/api/{run.user}/tasks"
    with httpx2.Client(headers=headers, timeout=30) as http:

        def record(response: httpx2.Response) -> httpx2.Response:
            run.statuses.append(response.status_code)
            run.bodies.append(response.text)
            return response

        start.wait()
        for n in range(3):
            created = record(http.post(base, json={"title": f"{run.user} #{n}"}))
            run.own_ids.add(created.json()["id"])
        for _ in range(ROUNDS):
            record(http.get(base))
            for task_id in sorted(run.own_ids):
                record(http.get(f"{base}/{task_id}"))
            some = sorted(run.own_ids)[0]
            record(http.patch(f"{base}/{some}", json={"description": f"by {run.user}"}))
            record(http.patch(f"{base}/{some}/complete"))
            for task_id in foreign()[:2]:
                record(http.get(f"{base}/{task_id}"))
    return run


def leaks(run: UserRun, owner_of: dict[str, str]) -> list[str]:
    """Every other user's task id or user id that appears anywhere in this user's responses."""
    found = []
    for body in run.bodies:
        for task_id, owner in owner_of.items():
            if owner != run.user and (task_id in body or owner in body):
                found.append(f"{run.user} saw {owner}'s {task_id}")
    return found


def test_concurrent_users_through_the_pooler_never_see_each_others_rows(
    server: RunningServer,
    request: pytest.FixtureRequest,
    token_for: Mint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag = uuid.uuid4().hex[:8]
    runs = [UserRun(f"pooled-{tag}-{n:02d}") for n in range(USERS)]
    start = threading.Barrier(USERS)

    def foreign_ids_for(me: UserRun) -> Callable[[], list[str]]:
        return lambda: [i for r in runs if r is not me for i in sorted(r.own_ids)]

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        done = [
            pool.submit(act_as, server, token_for(r.user), r, start, foreign_ids_for(r))
            for r in runs
        ]
        for future in done:
            future.result()

    owner_of = {task_id: r.user for r in runs for task_id in r.own_ids}
    found = [leak for r in runs for leak in leaks(r, owner_of)]
    requests = sum(len(r.statuses) for r in runs)
    foreign_probes = sum(s == 404 for r in runs for s in r.statuses)
    with capsys.disabled():
        print(
            f"\n{request.node.callspec.params['server']}, transaction mode, pool of "
            f"{SHARED_POOL_SIZE} server connections: "
            f"{USERS} users, {requests} requests ({foreign_probes} probes of foreign tasks), "
            f"leaks = {len(found)}"
        )
    assert found == []
    assert len(owner_of) == USERS * 3
    assert set().union(*(set(r.statuses) for r in runs)) <= {200, 201, 404}
    assert foreign_probes == USERS * ROUNDS * 2
    pooler_fixture, settings = POOLED_SERVICES[request.node.callspec.params["server"]]
    if settings.get("DB_PREPARED_STATEMENTS") == "true":
        # The variant proves something only if the reads really ran prepared.
        assert _prepared_list_reads(request.getfixturevalue(pooler_fixture)) > 0


def _prepared_list_reads(pooler: Pooler) -> int:
    """Prepared list queries on the pooler's server connections."""
    rows = pooler.on_each_server_connection(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%row_to_json%'"
    )
    return sum(row[0] for row in rows)


# Who a server connection acts as, and which one it is.
PROBE = "SELECT current_setting('app.user_id', true), current_user::text, pg_backend_pid()"


def _probe(conn: psycopg.Connection) -> tuple[str | None, str, int]:
    row = conn.execute(PROBE).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_a_transaction_without_identity_finds_none_on_the_same_server_connection(
    pooler: Pooler, alice: str, bob: str, owner_conn: psycopg.Connection
) -> None:
    """Through a pool of one server connection: what one client's transaction set is gone
    for the next client's, although both ran on the very same PostgreSQL backend."""
    for user in (alice, bob):
        owner_conn.execute("INSERT INTO task (user_id, title) VALUES (%s, 'x')", (user,))
    login = owner_conn.info.user
    with psycopg.connect(pooler.single_url, prepare_threshold=None) as first:
        open_as_user(first, alice)
        identity, role, first_backend = _probe(first)
        assert (identity, role) == (alice, "tasks_app")
        assert first.execute("SELECT count(*) FROM task").fetchone() == (1,)
        first.commit()
        with psycopg.connect(pooler.single_url, prepare_threshold=None) as second:
            identity, role, second_backend = _probe(second)
            assert second_backend == first_backend
            assert identity in (None, "")
            assert role == login
            open_as_user(second, None)
            assert second.execute("SELECT count(*) FROM task").fetchone() == (0,)
            second.rollback()


@pytest.mark.parametrize("pooler_fixture", ["pooler", "tracking_pooler"])
def test_after_the_concurrent_run_no_pooled_server_connection_keeps_an_identity(
    pooler_fixture: str, request: pytest.FixtureRequest, owner_conn: psycopg.Connection
) -> None:
    """Hold as many client transactions open as there are server connections, so each probe
    lands on a different one of the connections the service's requests used."""
    pooler: Pooler = request.getfixturevalue(pooler_fixture)
    login = owner_conn.info.user
    probes = pooler.on_each_server_connection(PROBE)
    assert len({backend for _, _, backend in probes}) == SHARED_POOL_SIZE
    assert all(identity in (None, "") and role == login for identity, role, _ in probes)


def test_the_probe_does_see_a_session_level_set_leak(pooler: Pooler, alice: str) -> None:
    """Control: the anti-pattern (a session-level SET) does leak across clients of this pooler,
    so the probes above would have caught it. The service only ever uses SET LOCAL."""
    with psycopg.connect(pooler.single_url, prepare_threshold=None, autocommit=True) as first:
        first.execute("SELECT set_config('app.user_id', %s, false)", (alice,))
    try:
        with psycopg.connect(pooler.single_url, prepare_threshold=None) as second:
            identity, _, _ = _probe(second)
            assert identity == alice
    finally:
        with psycopg.connect(pooler.single_url, prepare_threshold=None, autocommit=True) as clean:
            clean.execute("RESET app.user_id")
