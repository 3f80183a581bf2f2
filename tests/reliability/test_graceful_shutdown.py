"""SIGTERM (a deploy, a scale-in) stops new work but lets in-flight requests finish.

The in-flight request is made slow for real: the test holds a row lock the request needs, sends
SIGTERM while the request waits for it, and only then lets it go.
"""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import psycopg
import pytest

from api.auth.tokens import mint_token
from tests.reliability.support import Server

pytestmark = pytest.mark.slow


def wait_until_the_request_waits_on_the_lock(conn: psycopg.Connection) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'tasks-api' AND wait_event_type = 'Lock'"
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the request never reached the locked row")


def wait_until_new_connections_are_refused(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"{base_url}/healthz", timeout=2)
        except httpx2.ConnectError:
            return
        time.sleep(0.05)
    raise AssertionError("the server kept accepting connections after SIGTERM")


def test_sigterm_finishes_the_in_flight_request_then_exits_cleanly(
    database_url: str, jwt_secret: str, owner_conn: psycopg.Connection, tmp_path: Path
) -> None:
    user = f"sigterm-{uuid.uuid4().hex[:8]}"
    row = owner_conn.execute(
        "INSERT INTO task (user_id, title) VALUES (%s, 'before') RETURNING id::text", (user,)
    ).fetchone()
    assert row is not None
    task_url = f"/api/{user}/tasks/{row[0]}"
    headers = {"Authorization": f"Bearer {mint_token(jwt_secret, user)}"}
    # The request waits on a lock the test holds; keep the statement timeout out of the way.
    server = Server(database_url, jwt_secret, tmp_path, DB_STATEMENT_TIMEOUT_MS="60000")
    server.start()
    try:
        with psycopg.connect(database_url) as locker, ThreadPoolExecutor(1) as pool:
            locker.execute("SELECT 1 FROM task WHERE id = %s FOR UPDATE", (row[0],))
            in_flight = pool.submit(
                httpx2.patch,
                f"{server.base_url}{task_url}",
                json={"title": "after"},
                headers=headers,
                timeout=60,
            )
            wait_until_the_request_waits_on_the_lock(owner_conn)
            server.terminate()
            wait_until_new_connections_are_refused(server.base_url)
            assert server.process is not None and server.process.poll() is None
            locker.commit()
            response = in_flight.result(timeout=60)
        assert response.status_code == 200
        assert response.json()["title"] == "after"
        # uvicorn re-raises the SIGTERM it handled once shutdown is complete, so a supervisor
        # sees the process end by that signal; a crash or a hang would show otherwise.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        server.stop()
