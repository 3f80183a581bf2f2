"""The command line as operators use it (migrate, serve, token), deployed and on a bare machine."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from cli.main import resolve_workers
from tests.support.jwks import claims_for, jwks_of, new_key
from tests.support.postgres import throwaway_database
from tests.support.server import TASKS_API, RunningServer, base_env, serve


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKS_API), *args], env=env, capture_output=True, text=True, timeout=120
    )


def create_and_list(base_url: str, user: str, token: str) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx2.post(
        f"{base_url}/api/{user}/tasks", json={"title": "from curl"}, headers=headers
    )
    assert created.status_code == 201, created.text
    listed = httpx2.get(f"{base_url}/api/{user}/tasks", headers=headers)
    assert listed.status_code == 200
    tasks: list[dict[str, object]] = listed.json()
    return tasks


def test_migrate_then_serve_with_database_url_and_secret(admin_url: str, tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    with throwaway_database(admin_url, migrate=False) as url:
        env = base_env(DATABASE_URL=url, JWT_SECRET=secret, RATE_LIMIT="off")
        migrated = run_cli(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        token = run_cli(env, "token", "carol").stdout.strip()
        with serve(env, tmp_path / "serve.log") as server:
            tasks = create_and_list(server.base_url, "carol", token)
    assert [t["title"] for t in tasks] == ["from curl"]


def test_serve_refuses_an_unmigrated_database(admin_url: str) -> None:
    with throwaway_database(admin_url, migrate=False) as url:
        env = base_env(DATABASE_URL=url, JWT_SECRET=secrets.token_urlsafe(48))
        result = run_cli(env, "serve", "--port", "1")
    assert result.returncode != 0
    assert "tasks-api migrate" in result.stderr


def test_serve_refuses_a_deployed_database_without_a_secret(database_url: str) -> None:
    result = run_cli(base_env(DATABASE_URL=database_url), "serve", "--port", "1")
    assert result.returncode != 0
    assert "JWT_SECRET" in result.stderr


def test_short_secret_is_refused_with_a_clear_message(database_url: str) -> None:
    result = run_cli(
        base_env(DATABASE_URL=database_url, JWT_SECRET="short"), "serve", "--port", "1"
    )
    assert result.returncode != 0
    assert "at least 32 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_bare_machine_serves_on_embedded_postgres_with_a_generated_secret(tmp_path: Path) -> None:
    # Not under tmp_path: PostgreSQL runs as another OS user when we are root, and pytest keeps
    # its temporary tree private (0700) to root.
    data_dir = Path(tempfile.mkdtemp(prefix="tasks-api-local-")) / "data"
    env = base_env(TASKS_DATA_DIR=str(data_dir), RATE_LIMIT="off")
    with serve(env, tmp_path / "serve.log", timeout=120) as server:
        token = run_cli(env, "token", "dave").stdout.strip()
        tasks = create_and_list(server.base_url, "dave", token)
        log = server.log()
    assert [t["title"] for t in tasks] == ["from curl"]
    secret_file = data_dir / "jwt-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "generated a random development secret" in log
    assert secret_file.read_text().strip() not in log
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_sigterm_stops_serve_and_its_embedded_postgres(tmp_path: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="tasks-api-local-")) / "data"
    env = base_env(TASKS_DATA_DIR=str(data_dir), RATE_LIMIT="off")
    with serve(env, tmp_path / "serve.log", timeout=120) as server:
        postmaster = data_dir / "pgdata" / "postmaster.pid"
        postgres_pid = int(postmaster.read_text().splitlines()[0])
        os.kill(server.process.pid, signal.SIGTERM)  # the process alone, not its group
        assert server.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 30
    while _alive(postgres_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(postgres_pid), "the embedded PostgreSQL outlived tasks-api serve"
    assert not postmaster.exists()
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_token_refuses_without_a_secret_for_a_deployed_database(database_url: str) -> None:
    result = run_cli(base_env(DATABASE_URL=database_url), "token", "erin")
    assert result.returncode != 0


@pytest.mark.parametrize("command", ["serve", "migrate", "token"])
def test_each_command_has_help(command: str) -> None:
    result = run_cli(base_env(), command, "--help")
    assert result.returncode == 0
    assert "usage: tasks-api" in result.stdout


def test_workers_flag_wins_then_web_concurrency_then_one() -> None:
    assert resolve_workers(3, {"WEB_CONCURRENCY": "2"}) == 3
    assert resolve_workers(None, {"WEB_CONCURRENCY": "2"}) == 2
    assert resolve_workers(None, {}) == 1


# -- Findings 9 and 10: what a deployed `serve` says at startup and shows the world -----------

UNSCOPED_WARNING = "JWT_ISSUER and JWT_AUDIENCE are both unset"


@pytest.fixture(scope="module")
def unscoped_server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Deployed (DATABASE_URL) with neither JWT_ISSUER nor JWT_AUDIENCE, metrics off."""
    env = base_env(DATABASE_URL=database_url, JWT_SECRET=jwt_secret, RATE_LIMIT="off")
    with serve(env, tmp_path_factory.mktemp("unscoped") / "serve.log") as server:
        yield server


@pytest.fixture(scope="module")
def scoped_server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The README's production settings: issuer and audience set, metrics on their own port."""
    env = base_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        JWT_ISSUER="https://auth.example",
        JWT_AUDIENCE="tasks-api",
        RATE_LIMIT="off",
    )
    log = tmp_path_factory.mktemp("scoped") / "serve.log"
    with serve(env, log, metrics=True) as server:
        yield server


def test_serve_warns_when_tokens_are_not_scoped_to_this_service(
    unscoped_server: RunningServer,
) -> None:
    [line] = [x for x in unscoped_server.log().splitlines() if UNSCOPED_WARNING in x]
    assert "WARNING" in line
    assert "another service" in line


def test_serve_does_not_warn_with_issuer_and_audience_set(scoped_server: RunningServer) -> None:
    assert UNSCOPED_WARNING not in scoped_server.log()


def test_the_embedded_default_does_not_warn_about_token_scope(tmp_path: Path) -> None:
    """No DATABASE_URL: a developer's machine with a generated secret, not a deployment."""
    data_dir = Path(tempfile.mkdtemp(prefix="tasks-api-local-")) / "data"
    env = base_env(TASKS_DATA_DIR=str(data_dir), RATE_LIMIT="off")
    with serve(env, tmp_path / "serve.log", timeout=120) as server:
        log = server.log()
    shutil.rmtree(data_dir.parent, ignore_errors=True)
    assert "generated a random development secret" in log
    assert UNSCOPED_WARNING not in log


def test_metrics_are_not_served_on_the_public_listener_by_default(
    unscoped_server: RunningServer,
) -> None:
    response = httpx2.get(f"{unscoped_server.base_url}/metrics", timeout=10)
    assert response.status_code == 404
    assert "tasks_api_" not in response.text


def test_metrics_are_served_on_their_own_loopback_listener(scoped_server: RunningServer) -> None:
    assert scoped_server.metrics_url is not None
    assert scoped_server.metrics_url.startswith("http://127.0.0.1:")
    scraped = httpx2.get(scoped_server.metrics_url, timeout=10)
    assert scraped.status_code == 200
    # serve() polled /readyz until it answered 200: those requests are counted.
    assert 'tasks_api_http_requests_total{method="GET",route="/readyz",status="200"}' in (
        scraped.text
    )
    public = httpx2.get(f"{scoped_server.base_url}/metrics", timeout=10)
    assert public.status_code == 404


# -- Consistency-Token across the workers of one serve, with a JWKS-only issuer --------------


def test_every_worker_accepts_the_consistency_tokens_the_others_issued(
    database_url: str, tmp_path: Path
) -> None:
    """No JWT_SECRET to derive the token key from: serve shares one among its workers, so an
    echoed token is honoured whichever worker the read lands on (never a 400)."""
    key = new_key("ES256")
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(key)))
    env = base_env(
        DATABASE_URL=database_url,
        JWT_ALGORITHMS="ES256",
        JWT_JWKS_URL=str(jwks_file),
        RATE_LIMIT="off",
    )
    with serve(env, tmp_path / "serve.log", "--workers", "2") as server:
        deadline = time.monotonic() + 60
        while server.log().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {key.sign(claims_for('erin'))}"}
        created = httpx2.post(
            f"{server.base_url}/api/erin/tasks", json={"title": "t"}, headers=headers
        )
        echoed = {**headers, "Consistency-Token": created.headers["Consistency-Token"]}
        # A new connection per read: the kernel spreads them over both workers.
        statuses = [
            httpx2.get(f"{server.base_url}/api/erin/tasks", headers=echoed).status_code
            for _ in range(30)
        ]
    assert created.status_code == 201
    assert statuses == [200] * 30
