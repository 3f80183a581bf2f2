"""`tasks-api serve` with DATABASE_READ_URL: each replica is self-audited like the primary.

A replica that does not enforce the rules is a refusal that names it; one that cannot be reached
is not (it starts out of rotation and reads go to the primary). The broken "replica" is a
database on the test server whose task table has RLS no longer forced: a real standby replays
its primary's catalog, so breaking one alone is impossible; the audit reads the same catalog
either way.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from api.auth.tokens import mint_token
from db.replicas import public_host
from tests.support.postgres import throwaway_database
from tests.support.server import TASKS_API, base_env, free_port, serve


@pytest.fixture
def broken_replica(admin_url: str) -> Iterator[str]:
    with throwaway_database(admin_url, prefix="tasks_broken_replica") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE task NO FORCE ROW LEVEL SECURITY")
        yield url


def serve_env(primary_url: str, read_urls: str, secret: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=primary_url, DATABASE_READ_URL=read_urls, JWT_SECRET=secret, RATE_LIMIT="off"
    )


def test_serve_refuses_a_replica_that_does_not_enforce_the_rules(
    primary_url: str, standby_url: str, broken_replica: str
) -> None:
    env = serve_env(primary_url, f"{standby_url},{broken_replica}", secrets.token_urlsafe(48))
    result = subprocess.run(
        [str(TASKS_API), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    refusals = [
        line.removeprefix("tasks-api: refusing to start: ")
        for line in result.stderr.splitlines()
        if line.startswith("tasks-api: refusing to start: ")
    ]
    assert refusals
    named = f"replica1 ({public_host(broken_replica)}): rls_not_forced: public.task:"
    assert all(line.startswith("replica1 ") for line in refusals), refusals
    assert any(line.startswith(named) for line in refusals), refusals
    assert "postgres@" not in result.stderr  # the URL (and any password in it) is never printed


def test_serve_starts_with_a_replica_that_is_down_and_reads_from_the_primary(
    primary_url: str, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(48)
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/tasks"
    env = serve_env(primary_url, down, secret)
    with serve(env, tmp_path / "serve.log", metrics=True) as server:
        token = mint_token(secret, "uma")
        response = httpx2.get(
            f"{server.base_url}/api/uma/tasks", headers={"Authorization": f"Bearer {token}"}
        )
        assert server.metrics_url is not None
        metrics = httpx2.get(server.metrics_url).text
    assert response.status_code == 200
    assert "replica0 (127.0.0.1:" in server.log() and "not reachable" in server.log()
    assert 'tasks_api_db_reads_sent_to_primary_total{reason="lag"} 1.0' in metrics


def test_serve_reads_from_a_healthy_standby(
    primary_url: str, standby_url: str, tmp_path: Path
) -> None:
    secret = secrets.token_urlsafe(48)
    env = serve_env(primary_url, standby_url, secret)
    with serve(env, tmp_path / "serve.log", metrics=True) as server:
        headers = {"Authorization": f"Bearer {mint_token(secret, 'vic')}"}
        created = httpx2.post(
            f"{server.base_url}/api/vic/tasks", json={"title": "t"}, headers=headers
        )
        token = created.headers["Consistency-Token"]
        answers = [
            httpx2.get(f"{server.base_url}/api/vic/tasks", headers=headers).status_code
            for _ in range(20)
        ]
        echoed = httpx2.get(
            f"{server.base_url}{created.headers['Location']}",
            headers={**headers, "Consistency-Token": token},
        )
        assert server.metrics_url is not None
        metrics = httpx2.get(server.metrics_url).text
    assert answers == [200] * 20 and echoed.status_code == 200
    assert 'tasks_api_db_reads_total{target="replica0"}' in metrics, metrics
