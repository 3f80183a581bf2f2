"""OWASP API8: error bodies explain the client's mistake and reveal nothing of the server.

No stack trace, no SQL, no driver or framework names, no file paths, no connection string,
and no echo of what was sent (a reflected value is an injection vector of its own).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.support.server import free_port

Auth = Callable[[str], dict[str, str]]
INTERNALS = (
    "traceback",
    'file "',
    ".py",
    "sqlalchemy",
    "psycopg",
    "postgres",
    "select ",
    "insert ",
    "update task",
    "where ",
    "sqlstate",
    "pydantic",
    "starlette",
    "127.0.0.1",
)
MARKER = "<script>probe-7f3a</script>"


def assert_clean_problem(response: Any, *, secrets: tuple[str, ...] = ()) -> None:
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    text = response.text.lower()
    for leak in INTERNALS:
        assert leak not in text, (leak, response.text)
    assert MARKER.lower() not in text
    for secret in secrets:
        assert secret not in response.text


def client_mistakes(alice: str, task: str) -> list[tuple[str, str, dict[str, Any]]]:
    base = f"/api/{alice}/tasks"
    return [
        (
            "POST",
            base,
            {"content": b'{"title": "x"', "headers": {"content-type": "application/json"}},
        ),
        ("POST", base, {"json": {"title": MARKER * 200}}),
        ("POST", base, {"json": {"title": "x", "owner": 1}}),
        ("POST", base, {"json": {"title": "a\u0000b"}}),
        ("POST", base, {"json": {"title": 5}}),
        ("POST", base, {"json": [MARKER]}),
        ("GET", f"{base}/{MARKER}", {}),
        ("GET", f"{base}?limit=100000", {}),
        ("GET", f"{base}?sort={MARKER}", {}),
        ("GET", f"{base}?cursor={MARKER}", {}),
        ("PUT", f"{base}/{task}", {"json": {"description": MARKER}}),
        ("PATCH", f"{base}/{task}", {"json": {"completed": "yes"}}),
        ("PATCH", f"{base}/{task}", {"json": {"title": None}}),
        ("PUT", f"{base}/{task}", {"json": {"title": "x"}, "headers": {"If-Match": MARKER}}),
        ("DELETE", f"{base}/{uuid.uuid4()}", {}),
        ("TRACE", base, {}),
        ("GET", f"/api/{alice}/nothing-here/{MARKER}", {}),
    ]


def test_no_client_mistake_reveals_internals(client: TestClient, auth: Auth, alice: str) -> None:
    task = client.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice)).json()["id"]
    for method, path, kwargs in client_mistakes(alice, task):
        headers = {**auth(alice), **kwargs.pop("headers", {})}
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code >= 400, (method, path)
        assert_clean_problem(response)


def test_a_refused_token_is_not_echoed(
    client: TestClient, token_for: Callable[..., str], alice: str, jwt_secret: str
) -> None:
    expired = token_for(alice, exp=1)
    tampered = token_for(alice)[:-4] + "AAAA"
    for token in (expired, tampered, f"{MARKER}.{MARKER}.{MARKER}"):
        response = client.get(f"/api/{alice}/tasks", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert_clean_problem(response, secrets=(token, jwt_secret))
        assert token not in response.headers.get("www-authenticate", "")


@pytest.fixture
def client_without_database(jwt_secret: str) -> Iterator[TestClient]:
    """The app pointed at a port where no database listens (with a password in the URL)."""
    url = f"postgresql://tasks:hunter2-db-password@127.0.0.1:{free_port()}/tasks"
    settings = make_settings(
        url, jwt_secret, db_connect_retry_seconds=0, db_connect_timeout_seconds=1
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_an_unreachable_database_is_a_clean_503(
    client_without_database: TestClient, auth: Auth, alice: str
) -> None:
    for method, body in (("GET", None), ("POST", {"title": "x"})):
        response = client_without_database.request(
            method, f"/api/{alice}/tasks", json=body, headers=auth(alice)
        )
        assert response.status_code == 503, response.text
        assert "retry-after" in response.headers
        assert_clean_problem(response, secrets=("hunter2-db-password",))
