"""Idempotency-Key on POST /api/{user_id}/tasks: a retried create never makes a second task."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

Auth = Callable[[str], dict[str, str]]


def post(
    client: TestClient, auth: Auth, user: str, key: str | bytes, body: dict[str, object]
) -> Response:
    raw_key = key if isinstance(key, bytes) else key.encode()
    headers = [(name.encode(), value.encode()) for name, value in auth(user).items()]
    return client.post(
        f"/api/{user}/tasks", json=body, headers=[*headers, (b"Idempotency-Key", raw_key)]
    )


def task_count(conn: psycopg.Connection, user: str) -> int:
    row = conn.execute("SELECT count(*) FROM task WHERE user_id = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_same_key_and_body_replays_status_body_location_and_etag(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    first = post(client, auth, alice, key, {"title": "Pay rent"})
    again = post(client, auth, alice, key, {"title": "Pay rent"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert task_count(owner_conn, alice) == 1


def test_a_replay_is_marked_and_the_first_response_is_not(
    client: TestClient, auth: Auth, alice: str
) -> None:
    key = str(uuid.uuid4())
    first = post(client, auth, alice, key, {"title": "Pay rent"})
    again = post(client, auth, alice, key, {"title": "Pay rent"})
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"


def test_same_key_with_a_different_body_is_422_problem_json(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    post(client, auth, alice, key, {"title": "Pay rent"})
    other = post(client, auth, alice, key, {"title": "Pay rent twice"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:tasks-api:problem:idempotency-key-reused"
    assert task_count(owner_conn, alice) == 1


def test_bodies_that_validate_to_the_same_request_share_a_key(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    first = post(client, auth, alice, key, {"title": "Pay rent"})
    again = post(client, auth, alice, key, {"completed": False, "title": "  Pay rent "})
    assert again.status_code == 201
    assert again.content == first.content
    assert task_count(owner_conn, alice) == 1


def test_the_same_key_from_two_users_names_two_requests(
    client: TestClient, auth: Auth, alice: str, bob: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    for_alice = post(client, auth, alice, key, {"title": "Shared key"})
    for_bob = post(client, auth, bob, key, {"title": "Shared key, other body"})
    assert for_alice.status_code == for_bob.status_code == 201
    assert for_bob.json()["user_id"] == bob
    assert "Idempotent-Replayed" not in for_bob.headers
    assert task_count(owner_conn, alice) == task_count(owner_conn, bob) == 1


def test_a_replay_returns_the_original_response_even_after_the_task_changed(
    client: TestClient, auth: Auth, alice: str
) -> None:
    key = str(uuid.uuid4())
    first = post(client, auth, alice, key, {"title": "Draft"})
    client.patch(first.headers["Location"], json={"title": "Final"}, headers=auth(alice))
    again = post(client, auth, alice, key, {"title": "Draft"})
    assert again.json()["title"] == "Draft"
    assert again.content == first.content


def test_a_refused_request_does_not_use_up_its_key(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    refused = post(client, auth, alice, key, {"title": "x", "user_id": "mallory"})
    accepted = post(client, auth, alice, key, {"title": "x"})
    assert refused.status_code == 422
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted.headers
    assert task_count(owner_conn, alice) == 1


def test_an_expired_key_can_name_a_new_request(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    post(client, auth, alice, key, {"title": "Yesterday"})
    owner_conn.execute(
        "UPDATE idempotency_key SET expires_at = now() - interval '1 second'"
        " WHERE user_id = %s AND key = %s",
        (alice, key),
    )
    today = post(client, auth, alice, key, {"title": "Today"})
    assert today.status_code == 201
    assert today.json()["title"] == "Today"
    assert task_count(owner_conn, alice) == 2
    again = post(client, auth, alice, key, {"title": "Today"})
    assert again.content == today.content


def test_keys_expire_twenty_four_hours_after_they_are_recorded(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    key = str(uuid.uuid4())
    post(client, auth, alice, key, {"title": "Pay rent"})
    row = owner_conn.execute(
        "SELECT expires_at - created_at FROM idempotency_key WHERE user_id = %s AND key = %s",
        (alice, key),
    ).fetchone()
    assert row is not None
    assert row[0].total_seconds() == 24 * 3600


@pytest.mark.parametrize(
    "key",
    ["!", "a" * 255, "order-2026-11-27T05:30:00Z#1", str(uuid.uuid4())],
    ids=["one-char", "255-chars", "punctuation", "uuid"],
)
def test_keys_of_1_to_255_visible_ascii_characters_are_accepted(
    client: TestClient, auth: Auth, alice: str, key: str
) -> None:
    assert post(client, auth, alice, key, {"title": "ok"}).status_code == 201


@pytest.mark.parametrize(
    "key",
    ["a" * 256, "two words", "tab\there", "caf\u00e9".encode()],
    ids=["256-chars", "space", "control-char", "non-ascii"],
)
def test_other_keys_are_422_problem_json_naming_the_header(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection, key: str | bytes
) -> None:
    response = post(client, auth, alice, key, {"title": "never stored"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {(e["location"], e["field"]) for e in response.json()["errors"]} == {
        ("header", "Idempotency-Key")
    }
    assert task_count(owner_conn, alice) == 0


def test_an_empty_key_is_422(client: TestClient, auth: Auth, alice: str) -> None:
    response = post(client, auth, alice, "", {"title": "never stored"})
    assert response.status_code == 422


def test_without_a_key_every_post_creates_a_task(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    for _ in range(2):
        response = client.post(f"/api/{alice}/tasks", json={"title": "t"}, headers=auth(alice))
        assert response.status_code == 201
    assert task_count(owner_conn, alice) == 2


def key_count(conn: psycopg.Connection, user: str) -> int:
    query = "SELECT count(*) FROM idempotency_key WHERE user_id = %s"
    row = conn.execute(query, (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_keyed_create_purges_the_callers_other_expired_keys(
    client: TestClient, auth: Auth, alice: str, owner_conn: psycopg.Connection
) -> None:
    for _ in range(3):
        post(client, auth, alice, str(uuid.uuid4()), {"title": "Old"})
    owner_conn.execute(
        "UPDATE idempotency_key SET expires_at = now() - interval '1 second' WHERE user_id = %s",
        (alice,),
    )
    post(client, auth, alice, str(uuid.uuid4()), {"title": "New"})
    assert key_count(owner_conn, alice) == 1


def test_a_keyed_create_leaves_other_users_expired_keys_and_live_keys_alone(
    client: TestClient, auth: Auth, alice: str, bob: str, owner_conn: psycopg.Connection
) -> None:
    post(client, auth, bob, str(uuid.uuid4()), {"title": "Bob's"})
    post(client, auth, alice, str(uuid.uuid4()), {"title": "Alice's live key"})
    owner_conn.execute(
        "UPDATE idempotency_key SET expires_at = now() - interval '1 second' WHERE user_id = %s",
        (bob,),
    )
    post(client, auth, alice, str(uuid.uuid4()), {"title": "Another"})
    assert key_count(owner_conn, bob) == 1
    assert key_count(owner_conn, alice) == 2
