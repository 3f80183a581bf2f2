"""Consistency-Token over HTTP against a real standby: a client that echoes its last write's
token reads that write, even while the standby's replay is paused; without one, reads come from
the standby while it is within READ_REPLICA_MAX_LAG_MS.

The standby proves it answered by what it does not know yet: rows written on the primary behind
the API's back while replay is paused are missing from its answers.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.http.consistency import HEADER
from api.observability.metrics import metrics_app
from db.unit_of_work import UnitOfWork
from tests.replicas.conftest import owner_insert, standby_stopped
from tests.support.standby import ReplicatedPair

AuthHeaders = Callable[[str], dict[str, str]]
# A bound no paused test reaches: the standby stays in rotation, stale on purpose.
GENEROUS_MS = 3_600_000


def uow_of(client: TestClient) -> UnitOfWork:
    uow: UnitOfWork = client.app.state.unit_of_work  # type: ignore[attr-defined]
    return uow


def standby_host(client: TestClient) -> str:
    replicas = uow_of(client).replicas
    assert replicas is not None
    return replicas.replicas[0].host


def wait_for_rotation(client: TestClient, wanted: bool, timeout: float = 20.0) -> None:
    replicas = uow_of(client).replicas
    assert replicas is not None
    deadline = time.monotonic() + timeout
    while True:
        replicas.poll_once()
        if replicas.replicas[0].state.in_rotation is wanted:
            return
        assert time.monotonic() < deadline, replicas.replicas[0].state
        time.sleep(0.02)


def titles(client: TestClient, user: str, headers: dict[str, str]) -> list[str]:
    response = client.get(f"/api/{user}/tasks", params={"sort": "title"}, headers=headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """From the metrics listener of `client`'s process (never the public app)."""
    scrape = TestClient(metrics_app(client.app.state.unit_of_work))  # type: ignore[attr-defined]
    text = scrape.get("/metrics").text
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def user() -> str:
    return f"reader-{uuid.uuid4().hex[:12]}"


def test_every_successful_write_returns_a_consistency_token(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str
) -> None:
    with replica_app() as client:
        headers = auth(user)
        created = client.post(f"/api/{user}/tasks", json={"title": "a"}, headers=headers)
        task = f"/api/{user}/tasks/{created.json()['id']}"
        answers = [
            created,
            client.put(task, json={"title": "b"}, headers=headers),
            client.patch(task, json={"title": "c"}, headers=headers),
            client.patch(f"{task}/complete", headers=headers),
            client.delete(task, headers=headers),
        ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 204]
    assert all(len(a.headers[HEADER]) == 32 for a in answers)


def test_reads_without_a_token_are_served_by_the_standby(
    replica_app: Callable[..., Any],
    auth: AuthHeaders,
    user: str,
    primary_url: str,
    replay_paused: None,
) -> None:
    with replica_app(read_replica_max_lag_ms=GENEROUS_MS) as client:
        wait_for_rotation(client, True)
        owner_insert(primary_url, user, "not replayed yet")
        before = metric(client, "tasks_api_db_reads_total", target="replica0")
        assert titles(client, user, auth(user)) == []
        assert metric(client, "tasks_api_db_reads_total", target="replica0") == before + 1


def test_a_writes_token_makes_the_next_read_include_it_while_replay_is_paused(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str, replay_paused: None
) -> None:
    with replica_app(read_replica_max_lag_ms=GENEROUS_MS) as client:
        wait_for_rotation(client, True)
        created = client.post(f"/api/{user}/tasks", json={"title": "mine"}, headers=auth(user))
        token = created.headers[HEADER]
        before = metric(client, "tasks_api_db_reads_sent_to_primary_total", reason="token")
        assert titles(client, user, {**auth(user), HEADER: token}) == ["mine"]
        got = client.get(created.headers["Location"], headers={**auth(user), HEADER: token})
        assert got.status_code == 200
        assert metric(client, "tasks_api_db_reads_sent_to_primary_total", reason="token") == (
            before + 2
        )
        # The same read without the token is the standby's, which has not replayed it.
        assert titles(client, user, auth(user)) == []


def test_a_token_the_standby_has_replayed_is_served_by_the_standby(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str, pair: ReplicatedPair
) -> None:
    with replica_app() as client:
        created = client.post(f"/api/{user}/tasks", json={"title": "mine"}, headers=auth(user))
        pair.wait_for_replay()
        wait_for_rotation(client, True)
        before = metric(client, "tasks_api_db_reads_total", target="replica0")
        headers = {**auth(user), HEADER: created.headers[HEADER]}
        assert titles(client, user, headers) == ["mine"]
        assert metric(client, "tasks_api_db_reads_total", target="replica0") == before + 1


def test_a_standby_beyond_the_lag_bound_leaves_rotation_and_returns_when_caught_up(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str, pair: ReplicatedPair
) -> None:
    with replica_app(read_replica_max_lag_ms=0) as client:
        wait_for_rotation(client, True)
        pair.pause_replay()
        try:
            client.post(f"/api/{user}/tasks", json={"title": "fresh"}, headers=auth(user))
            wait_for_rotation(client, False)
            before = metric(client, "tasks_api_db_reads_sent_to_primary_total", reason="lag")
            assert titles(client, user, auth(user)) == ["fresh"]
            assert metric(client, "tasks_api_db_reads_sent_to_primary_total", reason="lag") == (
                before + 1
            )
            host = standby_host(client)
            in_rotation = metric(
                client, "tasks_api_db_replica_in_rotation", replica="replica0", host=host
            )
            assert in_rotation == 0
        finally:
            pair.resume_replay()
        wait_for_rotation(client, True)
        before = metric(client, "tasks_api_db_reads_total", target="replica0")
        assert titles(client, user, auth(user)) == ["fresh"]
        assert metric(client, "tasks_api_db_reads_total", target="replica0") == before + 1


def test_reads_survive_the_standby_stopping_mid_run(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str, pair: ReplicatedPair
) -> None:
    with replica_app() as client:
        client.post(f"/api/{user}/tasks", json={"title": "kept"}, headers=auth(user))
        pair.wait_for_replay()
        wait_for_rotation(client, True)
        assert titles(client, user, auth(user)) == ["kept"]  # pools a standby connection
        with standby_stopped(pair):
            answers = [
                client.get(f"/api/{user}/tasks", headers=auth(user)).status_code for _ in range(5)
            ]
        assert answers == [200] * 5


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "A" * 31,
        "A" * 33,
        "!" * 32,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ],
)
def test_a_malformed_token_is_400_problem_json(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str, token: str
) -> None:
    with replica_app() as client:
        response = client.get(f"/api/{user}/tasks", headers={**auth(user), HEADER: token})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tasks-api:problem:bad-request"


def test_a_tampered_token_is_400_problem_json(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str
) -> None:
    with replica_app() as client:
        created = client.post(f"/api/{user}/tasks", json={"title": "x"}, headers=auth(user))
        raw = bytearray(base64.urlsafe_b64decode(created.headers[HEADER]))
        raw[8] ^= 0x01  # one bit of the LSN: a position further on, say
        forged = base64.urlsafe_b64encode(bytes(raw)).decode()
        response = client.get(created.headers["Location"], headers={**auth(user), HEADER: forged})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_a_token_no_replica_ever_reaches_is_answered_by_the_primary(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str
) -> None:
    with replica_app() as client:
        tokens = client.app.state.consistency_tokens
        far_future = tokens.encode(2**63)
        response = client.get(f"/api/{user}/tasks", headers={**auth(user), HEADER: far_future})
    assert response.status_code == 200


def test_a_token_from_another_deployment_is_400(
    replica_app: Callable[..., Any], auth: AuthHeaders, user: str
) -> None:
    from api.http.consistency import TokenCodec

    elsewhere = TokenCodec(b"another deployment's key, 32 bytes long").encode(1)
    with replica_app() as client:
        response = client.get(f"/api/{user}/tasks", headers={**auth(user), HEADER: elsewhere})
    assert response.status_code == 400


def test_without_replicas_a_token_is_accepted_and_reads_the_primary(
    client: TestClient, auth: AuthHeaders, user: str
) -> None:
    created = client.post(f"/api/{user}/tasks", json={"title": "solo"}, headers=auth(user))
    headers = {**auth(user), HEADER: created.headers[HEADER]}
    assert client.get(created.headers["Location"], headers=headers).status_code == 200
