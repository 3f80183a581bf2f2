"""HEAD answers like GET without the body (api/http/head.py; finding 7: it was 405)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]
# Headers that legitimately differ between two answers to the same request.
PER_RESPONSE = {"date", "x-request-id", "ratelimit"}


def comparable(headers: object) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k not in PER_RESPONSE}  # type: ignore[call-overload]


@pytest.fixture
def paths(client: TestClient, auth: Auth, alice: str) -> dict[str, str]:
    for title in ("a", "b"):
        created = client.post(f"/api/{alice}/tasks", json={"title": title}, headers=auth(alice))
    return {
        "list": f"/api/{alice}/tasks?limit=1",
        "task": f"/api/{alice}/tasks/{created.json()['id']}",
        "healthz": "/healthz",
        "readyz": "/readyz",
        "openapi": "/openapi.json",
        "docs": "/docs",
    }


@pytest.mark.parametrize("name", ["list", "task", "healthz", "readyz", "openapi", "docs"])
def test_head_has_the_status_and_headers_of_get_and_no_body(
    client: TestClient, auth: Auth, alice: str, paths: dict[str, str], name: str
) -> None:
    get = client.get(paths[name], headers=auth(alice))
    head = client.head(paths[name], headers=auth(alice))
    assert get.status_code == 200, get.text
    assert head.status_code == 200
    assert head.content == b""
    assert comparable(head.headers) == comparable(get.headers)
    assert head.headers["content-length"] == str(len(get.content))


def test_head_of_a_missing_task_is_404_without_a_body(
    client: TestClient, auth: Auth, alice: str
) -> None:
    response = client.head(
        f"/api/{alice}/tasks/3fa85f64-5717-4562-b3fc-2c963f66afa6", headers=auth(alice)
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.content == b""


def test_head_without_a_token_is_401(client: TestClient, alice: str) -> None:
    response = client.head(f"/api/{alice}/tasks")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert response.content == b""


def test_head_on_a_path_without_get_is_405(client: TestClient, auth: Auth, alice: str) -> None:
    task = client.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice)).json()
    response = client.head(f"/api/{alice}/tasks/{task['id']}/complete", headers=auth(alice))
    assert response.status_code == 405
