"""OWASP API4 (unrestricted resource consumption): bodies and headers have hard limits.

Over-limit requests get a clear 413 or 431 problem before authentication, parsing or any
database work, and a request just under the limits still works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.http.size_limits import MAX_HEADER_COUNT
from api.settings import Settings
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]
WRITES = [("POST", ""), ("PUT", "/{id}"), ("PATCH", "/{id}")]


@pytest.fixture
def small_limits(database_url: str, jwt_secret: str) -> Settings:
    return make_settings(database_url, jwt_secret, max_body_bytes=4096, max_header_bytes=16384)


@pytest.fixture
def limited(small_limits: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(small_limits), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_problem(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("method", "suffix"), WRITES, ids=["post", "put", "patch"])
def test_a_body_over_the_limit_is_413_on_every_write(
    limited: TestClient, auth: Auth, alice: str, method: str, suffix: str
) -> None:
    task = limited.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice)).json()
    path = f"/api/{alice}/tasks" + suffix.format(id=task["id"])
    body = b'{"title": "x", "description": "' + b"d" * 5000 + b'"}'
    response = limited.request(
        method, path, content=body, headers={**auth(alice), "Content-Type": "application/json"}
    )
    assert_problem(response, 413)
    assert limited.get(f"/api/{alice}/tasks", headers=auth(alice)).json() == [task]


# Finding 4: the documented order is 401, then 403, then 413. The test this replaces
# (test_a_body_over_the_limit_is_413_even_without_a_token) pinned the accident that a stranger
# learned the body limit before being told to authenticate.
def test_a_body_over_the_limit_without_a_token_is_401(limited: TestClient, alice: str) -> None:
    response = limited.post(
        f"/api/{alice}/tasks",
        content=b"x" * 5000,
        headers={"Content-Type": "application/json"},
    )
    assert_problem(response, 401)


@pytest.mark.parametrize("expect", [{}, {"Expect": "100-continue"}], ids=["plain", "expect"])
def test_a_declared_length_over_the_limit_is_refused_401_403_413_in_order(
    limited: TestClient, auth: Auth, alice: str, bob: str, expect: dict[str, str]
) -> None:
    declared = {"Content-Type": "application/json", "Content-Length": "1000000", **expect}
    def post(user: str, headers: dict[str, str]) -> object:
        return limited.post(f"/api/{user}/tasks", content=b"{}", headers={**declared, **headers})

    assert_problem(post(alice, {}), 401)
    assert_problem(post(bob, auth(alice)), 403)
    assert_problem(post(alice, auth(alice)), 413)


def test_a_body_over_the_limit_outside_the_api_is_still_413(limited: TestClient) -> None:
    assert_problem(limited.post("/healthz", content=b"x" * 5000), 413)


def test_headers_over_the_size_limit_are_431(limited: TestClient, auth: Auth, alice: str) -> None:
    response = limited.get(f"/api/{alice}/tasks", headers={**auth(alice), "X-Padding": "p" * 17000})
    assert_problem(response, 431)


def test_too_many_headers_are_431(limited: TestClient, auth: Auth, alice: str) -> None:
    many = {f"X-Header-{n}": "v" for n in range(MAX_HEADER_COUNT + 1)}
    assert_problem(limited.get(f"/api/{alice}/tasks", headers={**auth(alice), **many}), 431)


def test_headers_are_limited_before_authentication(limited: TestClient, alice: str) -> None:
    response = limited.get(f"/api/{alice}/tasks", headers={"X-Padding": "p" * 17000})
    assert_problem(response, 431)


def test_requests_within_the_limits_are_served(limited: TestClient, auth: Auth, alice: str) -> None:
    headers = {**auth(alice), "X-Padding": "p" * 8000}
    headers |= {f"X-Header-{n}": "v" for n in range(MAX_HEADER_COUNT - 10)}
    body = {"title": "x", "description": "d" * 3000}
    assert limited.post(f"/api/{alice}/tasks", json=body, headers=headers).status_code == 201


def test_an_oversized_authorization_header_is_a_clear_401(client: TestClient, alice: str) -> None:
    response = client.get(f"/api/{alice}/tasks", headers={"Authorization": "Bearer " + "a" * 9000})
    assert_problem(response, 401)
