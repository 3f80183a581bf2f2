"""The tenant check (api/http/tenant_route.py): every path under /api/ names its caller.

Finding 5: `GET /api/alice/tasks/` answered `307 Location: http://<the client's Host>/...`,
before the tenant check. A path no route serves is now a problem+json 404, and only once the
token and the path's user have been checked, so it tells a stranger nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]
EVIL_HOST = {"Host": "evil.example"}
UNROUTED = ["/tasks/", "/tasks/{id}/", "/", "", "/nothing"]


def assert_problem(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert "location" not in response.headers  # type: ignore[attr-defined]


@pytest.fixture
def task_id(client: TestClient, auth: Auth, alice: str) -> str:
    response = client.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice))
    return str(response.json()["id"])


@pytest.mark.parametrize("suffix", UNROUTED)
def test_an_unrouted_path_of_ones_own_is_404_never_a_redirect(
    client: TestClient, auth: Auth, alice: str, task_id: str, suffix: str
) -> None:
    path = f"/api/{alice}" + suffix.format(id=task_id)
    response = client.get(path, headers={**auth(alice), **EVIL_HOST}, follow_redirects=False)
    assert_problem(response, 404)


@pytest.mark.parametrize("suffix", UNROUTED)
def test_an_unrouted_path_of_another_user_is_403(
    client: TestClient, auth: Auth, alice: str, bob: str, task_id: str, suffix: str
) -> None:
    path = f"/api/{bob}" + suffix.format(id=task_id)
    response = client.get(path, headers={**auth(alice), **EVIL_HOST}, follow_redirects=False)
    assert_problem(response, 403)


@pytest.mark.parametrize("suffix", UNROUTED)
def test_an_unrouted_path_without_a_token_is_401(
    client: TestClient, alice: str, task_id: str, suffix: str
) -> None:
    path = f"/api/{alice}" + suffix.format(id=task_id)
    response = client.get(path, headers=EVIL_HOST, follow_redirects=False)
    assert_problem(response, 401)


def test_a_method_another_users_path_does_not_serve_is_403_not_405(
    client: TestClient, auth: Auth, alice: str, bob: str
) -> None:
    assert_problem(client.put(f"/api/{bob}/tasks", headers=auth(alice)), 403)


def test_the_paths_user_is_compared_decoded(client: TestClient, auth: Auth) -> None:
    user = "a bé"  # a space and a non-ASCII letter, percent-encoded in the path
    response = client.get("/api/a%20b%C3%A9/tasks", headers=auth(user))
    assert response.status_code == 200, response.text
