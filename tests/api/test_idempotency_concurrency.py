"""Concurrent requests with one Idempotency-Key: the primary key serializes them, one task wins."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
from fastapi.testclient import TestClient
from httpx2 import Response

from api.tasks.idempotency import fingerprint
from api.tasks.schemas import TaskCreate

Auth = Callable[[str], dict[str, str]]


def post(client: TestClient, auth: Auth, user: str, key: str, title: str) -> Response:
    return client.post(
        f"/api/{user}/tasks", json={"title": title}, headers={**auth(user), "Idempotency-Key": key}
    )


def task_count(conn: psycopg.Connection, user: str) -> int:
    row = conn.execute("SELECT count(*) FROM task WHERE user_id = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0])


def wait_until_a_request_waits_on_a_lock(conn: psycopg.Connection) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        waiting = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'tasks-api' AND wait_event_type = 'Lock'"
        ).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the duplicate request never waited for the first one")


def test_a_duplicate_arriving_mid_commit_waits_and_replays_the_winner(
    client: TestClient,
    auth: Auth,
    alice: str,
    database_url: str,
    owner_conn: psycopg.Connection,
) -> None:
    key = str(uuid.uuid4())
    winner_body = '{"winner":true}'
    winner_location = f"/api/{alice}/tasks/{uuid.uuid4()}"
    with psycopg.connect(database_url) as first, ThreadPoolExecutor(1) as pool:
        first.execute(
            "INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code,"
            " response_body, location) VALUES (%s, %s, %s, 201, %s, %s)",
            (
                alice,
                key,
                fingerprint(TaskCreate.model_validate({"title": "Once"})),
                winner_body,
                winner_location,
            ),
        )
        duplicate = pool.submit(post, client, auth, alice, key, "Once")
        wait_until_a_request_waits_on_a_lock(owner_conn)
        first.commit()
        response = duplicate.result(timeout=30)
    assert response.status_code == 201
    assert response.content == winner_body.encode()
    assert response.headers["Location"] == winner_location
    assert response.headers["Idempotent-Replayed"] == "true"
    assert task_count(owner_conn, alice) == 0  # the duplicate's own insert was rolled back


def test_simultaneous_duplicates_create_one_task_and_all_get_its_response(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: post(client, auth, alice, key, "Once"), range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["Location"] for r in responses}) == 1
    assert task_count(owner_conn, alice) == 1
