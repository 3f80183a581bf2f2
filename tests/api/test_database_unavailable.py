"""While the database cannot serve, every route needing it answers 503 + Retry-After, never 500."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from api.app import create_app
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]
TASK = f"/tasks/{uuid.uuid4()}"
ROUTES = [
    ("GET", "/tasks", None),
    ("POST", "/tasks", {"title": "t"}),
    ("GET", TASK, None),
    ("PUT", TASK, {"title": "t"}),
    ("PATCH", TASK, {"title": "t"}),
    ("PATCH", f"{TASK}/complete", None),
    ("DELETE", TASK, None),
]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unreachable(jwt_secret: str) -> Iterator[TestClient]:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/tasks"
    settings = make_settings(url, jwt_secret, db_connect_retry_seconds=0.3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Retry-After"].isdigit()
    assert response.json()["type"] == "urn:tasks-api:problem:service-unavailable"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_task_route_is_503_with_retry_after_while_the_database_is_unreachable(
    unreachable: TestClient, auth: Auth, alice: str, method: str, path: str, body: object
) -> None:
    response = unreachable.request(method, f"/api/{alice}{path}", json=body, headers=auth(alice))
    assert_unavailable(response)


def test_a_keyed_create_is_503_too_and_can_be_retried_with_its_key(
    unreachable: TestClient, auth: Auth, alice: str
) -> None:
    response = unreachable.post(
        f"/api/{alice}/tasks",
        json={"title": "t"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert_unavailable(response)


def test_a_request_that_waits_too_long_for_a_pooled_connection_is_503(
    database_url: str, jwt_secret: str, auth: Auth, alice: str
) -> None:
    settings = make_settings(
        database_url,
        jwt_secret,
        db_pool_size=1,
        db_pool_max_overflow=0,
        db_pool_timeout_seconds=0.2,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        engine = client.app.state.unit_of_work.engine  # type: ignore[attr-defined]
        with engine.connect():  # the only connection, held elsewhere
            response = client.get(f"/api/{alice}/tasks", headers=auth(alice))
        after = client.get(f"/api/{alice}/tasks", headers=auth(alice))
    assert_unavailable(response)
    assert after.status_code == 200
