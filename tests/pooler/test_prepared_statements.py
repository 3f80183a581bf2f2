"""DB_PREPARED_STATEMENTS=true behind a pooler that tracks protocol-level prepared statements.

PgBouncer 1.21+ with `max_prepared_statements` maps each client's named statements onto
whichever server connection runs its transaction, so the service may prepare its hot queries
(DB_PREPARED_STATEMENTS=true) there. The default stays false: older PgBouncers (this machine's
Debian package is 1.18) and poolers without that tracking break named statements
(test_no_identity_leak.py shows the collision). The isolation run of test_no_identity_leak.py
is repeated here with the setting on.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.pooler.pgbouncer import PREPARED_STATEMENTS_SINCE, Pooler, pgbouncer, version
from tests.pooler.test_no_identity_leak import ROUNDS, USERS, UserRun, act_as, leaks
from tests.support.server import RunningServer, base_env, serve


@pytest.fixture(scope="module")
def tracking_pooler(database_url: str) -> Iterator[Pooler]:
    if version() < PREPARED_STATEMENTS_SINCE:
        pytest.skip(
            f"PgBouncer {'.'.join(map(str, version()))} does not track prepared statements"
            f" (needs {'.'.join(map(str, PREPARED_STATEMENTS_SINCE))}+)"
        )
    with pgbouncer(database_url, max_prepared_statements=200) as running:
        yield running


@pytest.fixture
def prepared_server(
    tracking_pooler: Pooler, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = base_env(
        DATABASE_URL=tracking_pooler.url,
        JWT_SECRET=jwt_secret,
        RATE_LIMIT="off",
        DB_POOL_SIZE="8",
        DB_POOL_MAX_OVERFLOW="8",
        DB_PREPARED_STATEMENTS="true",
    )
    with serve(env, tmp_path_factory.mktemp("prepared") / "serve.log") as running:
        yield running


def test_with_prepared_statements_concurrent_users_never_see_each_others_rows(
    prepared_server: RunningServer, token_for: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:8]
    runs = [UserRun(f"prepared-{tag}-{n:02d}") for n in range(USERS)]
    start = threading.Barrier(USERS)

    def foreign_ids_for(me: UserRun) -> Callable[[], list[str]]:
        return lambda: [i for r in runs if r is not me for i in sorted(r.own_ids)]

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        for future in [
            pool.submit(act_as, prepared_server, token_for(r.user), r, start, foreign_ids_for(r))
            for r in runs
        ]:
            future.result()

    owner_of = {task_id: r.user for r in runs for task_id in r.own_ids}
    assert [leak for r in runs for leak in leaks(r, owner_of)] == []
    assert set().union(*(set(r.statuses) for r in runs)) <= {200, 201, 404}
    assert sum(s == 404 for r in runs for s in r.statuses) == USERS * ROUNDS * 2
