"""Faults under concurrent load against a real `tasks-api serve` and a private PostgreSQL.

For each fault: no 500, every failure a 503 with Retry-After, recovery as soon as the failed
part is back (the database: no restart of the service needed), and every acknowledged (2xx)
write present afterwards. Writes whose outcome the client
could not know (503 or no answer) are retried with their Idempotency-Key: each ends as exactly
one task. Each test prints its figures (`[fault] ...`), shown with `pytest -s` or `-rA`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from psycopg import sql

from api.auth.tokens import mint_token
from db.migrate import upgrade_to_head
from tests.reliability.support import (
    NO_RESPONSE,
    REFUSED,
    FaultReport,
    Load,
    Outcome,
    PrivatePostgres,
    Server,
    error_window,
    histogram,
    private_postgres,
    recovered_at,
)
from tests.support.postgres import url_for_database

pytestmark = pytest.mark.slow

BASELINE_SECONDS = 1.0
DATABASE_DOWN_SECONDS = 2.0
STEADY_SECONDS = 1.0
RECOVERY_BOUND_SECONDS = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivatePostgres]:
    with private_postgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def service_url(cluster: PrivatePostgres) -> str:
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("tasks")))
    url = url_for_database(cluster.admin_url, "tasks")
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="module")
def secret() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def server(service_url: str, secret: str, workdir: Path) -> Iterator[Server]:
    service = Server(service_url, secret, workdir)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def tokens(secret: str) -> dict[str, str]:
    users = [f"fault-{i}-{uuid.uuid4().hex[:8]}" for i in range(4)]
    return {user: mint_token(secret, user, ttl_seconds=3600) for user in users}


@pytest.fixture(autouse=True)
def database_running(cluster: PrivatePostgres) -> Iterator[None]:
    """A test that failed while the database was stopped must not take the next one down."""
    yield
    if not cluster.running:
        cluster.start()


def under_load(
    name: str,
    server: Server,
    tokens: dict[str, str],
    service_url: str,
    inject: Callable[[], float],
    **load_options: float,
) -> tuple[FaultReport, list[Outcome]]:
    """Run load, inject the fault (which returns when the failed part is back), await recovery."""
    load = Load(server.base_url, tokens, **load_options)  # type: ignore[arg-type]
    load.start()
    try:
        time.sleep(BASELINE_SECONDS)
        back_at = inject()
        deadline = back_at + RECOVERY_BOUND_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.2)
            since = recovered_at(load.snapshot())
            if since is not None and time.monotonic() - max(since, back_at) >= STEADY_SECONDS:
                break
    finally:
        load.stop()
    outcomes = load.outcomes
    since = recovered_at(outcomes)
    writes = [o for o in outcomes if o.kind == "write"]
    acknowledged = [o.task_id for o in writes if o.status == 201]
    retried, duplicates = retry_ambiguous_writes(server, tokens, service_url, writes)
    report = FaultReport(
        fault=name,
        requests=len(outcomes),
        histogram=histogram(outcomes),
        server_errors_500=sum(o.status == 500 for o in outcomes),
        unavailable_503=sum(o.status == 503 for o in outcomes),
        unavailable_503_with_retry_after=sum(
            o.status == 503 and (o.retry_after or "").isdigit() for o in outcomes
        ),
        seconds_to_recover=None if since is None else max(0.0, since - back_at),
        seconds_clients_saw_errors=error_window(outcomes),
        acknowledged_writes=len(acknowledged),
        acknowledged_found=count_existing(service_url, acknowledged),
        ambiguous_writes_retried=retried,
        ambiguous_duplicates=duplicates,
    )
    return report, outcomes


def count_existing(service_url: str, task_ids: list[str | None]) -> int:
    with psycopg.connect(service_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM task WHERE id = ANY(%s::uuid[])", ([str(t) for t in task_ids],)
        ).fetchone()
    assert row is not None
    return int(row[0])


def retry_ambiguous_writes(
    server: Server, tokens: dict[str, str], service_url: str, writes: list[Outcome]
) -> tuple[int, int]:
    """Send every unacknowledged write again with its key; return (retried, duplicated titles)."""
    ambiguous = [o for o in writes if o.status != 201]
    with httpx2.Client(base_url=server.base_url, timeout=15) as client:
        for outcome in ambiguous:
            response = client.post(
                f"/api/{outcome.user}/tasks",
                json={"title": outcome.title},
                headers={
                    "Authorization": f"Bearer {tokens[outcome.user]}",
                    "Idempotency-Key": str(outcome.key),
                },
            )
            assert response.status_code == 201, response.text
    with psycopg.connect(service_url) as conn:
        duplicated = conn.execute(
            "SELECT count(*) FROM (SELECT title FROM task WHERE title = ANY(%s)"
            " GROUP BY title HAVING count(*) > 1) d",
            ([o.title for o in writes],),
        ).fetchone()
    assert duplicated is not None
    return len(ambiguous), int(duplicated[0])


def show(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    with capsys.disabled():
        print()
        for line in lines:
            print(line)


def assert_survived(report: FaultReport, outcomes: list[Outcome], allowed: set[object]) -> None:
    assert report.server_errors_500 == 0
    assert {o.status for o in outcomes} <= {200, 201, 503, *allowed}, report.histogram
    assert report.unavailable_503_with_retry_after == report.unavailable_503
    assert report.seconds_to_recover is not None, "the service never recovered"
    assert report.seconds_to_recover < RECOVERY_BOUND_SECONDS
    assert report.acknowledged_found == report.acknowledged_writes > 0
    assert report.ambiguous_duplicates == 0


def test_terminating_the_service_backends_under_load_is_survived(
    cluster: PrivatePostgres,
    server: Server,
    tokens: dict[str, str],
    service_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    terminated: list[int] = []

    def terminate_backends() -> float:
        for _ in range(3):
            with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                    " FROM pg_stat_activity WHERE application_name = 'tasks-api'"
                ).fetchone()
            terminated.append(int(row[0]) if row else 0)
            time.sleep(0.3)
        return time.monotonic()

    report, outcomes = under_load(
        "terminate backends", server, tokens, service_url, terminate_backends
    )
    show(capsys, report.render(), f"[fault] terminate backends: backends terminated={terminated}")
    assert sum(terminated) > 0
    assert_survived(report, outcomes, allowed=set())


def test_stopping_and_restarting_the_database_under_load_is_survived(
    cluster: PrivatePostgres,
    server: Server,
    tokens: dict[str, str],
    service_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    readiness: list[httpx2.Response] = []

    def restart_database() -> float:
        cluster.stop("fast")
        stopped = time.monotonic()
        readiness.append(httpx2.get(f"{server.base_url}/readyz", timeout=15))
        time.sleep(max(0.0, DATABASE_DOWN_SECONDS - (time.monotonic() - stopped)))
        cluster.start()
        return time.monotonic()

    report, outcomes = under_load("restart database", server, tokens, service_url, restart_database)
    ready_after = httpx2.get(f"{server.base_url}/readyz", timeout=15)
    show(
        capsys,
        report.render(),
        f"[fault] restart database: /readyz while down={readiness[0].status_code} "
        f"(Retry-After {readiness[0].headers.get('Retry-After')}), after={ready_after.status_code}",
    )
    assert report.unavailable_503 > 0  # the outage was real and visible
    assert_survived(report, outcomes, allowed=set())
    assert readiness[0].status_code == 503 and readiness[0].headers["Retry-After"].isdigit()
    assert ready_after.status_code == 200


def test_sigkill_of_the_server_under_writes_loses_no_acknowledged_write(
    server: Server,
    tokens: dict[str, str],
    service_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    restart: list[float] = []

    def kill_and_restart_server() -> float:
        server.kill()
        killed = time.monotonic()
        server.start(wait=False)
        spawned = time.monotonic()
        server.wait_ready()
        restart.append(time.monotonic() - killed)
        return spawned

    report, outcomes = under_load(
        "SIGKILL server", server, tokens, service_url, kill_and_restart_server, write_share=0.9
    )
    show(
        capsys,
        report.render(),
        f"[fault] SIGKILL server: seconds from SIGKILL to ready again={restart[0]:.2f}",
    )
    assert report.histogram.get(REFUSED, 0) > 0  # the kill was real and visible
    assert_survived(report, outcomes, allowed={REFUSED, NO_RESPONSE})


def test_serve_waits_for_a_database_that_is_down_at_startup(
    cluster: PrivatePostgres,
    service_url: str,
    secret: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.stop("fast")
    late = Server(service_url, secret, workdir)
    late.start(wait=False)
    try:
        time.sleep(1.5)
        cluster.start()
        seconds = late.wait_ready(timeout=RECOVERY_BOUND_SECONDS)
        show(capsys, f"[fault] database down at startup: ready {seconds:.2f}s after spawn")
        assert late.process is not None and late.process.poll() is None
    finally:
        late.stop()
