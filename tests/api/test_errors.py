"""Every error is RFC 9457 problem+json with the status the contract names; never a bare 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

Auth = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


def test_missing_token_is_401_with_bearer_challenge(client: TestClient, alice: str) -> None:
    response = client.get(f"/api/{alice}/tasks")
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_invalid_token_challenge_names_invalid_token(client: TestClient, alice: str) -> None:
    response = client.get(f"/api/{alice}/tasks", headers={"Authorization": "Bearer nope"})
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_another_users_path_is_403(client: TestClient, auth: Auth, alice: str, bob: str) -> None:
    assert_problem(client.get(f"/api/{bob}/tasks", headers=auth(alice)), 403)


def test_403_comes_before_body_validation(
    client: TestClient, auth: Auth, alice: str, bob: str
) -> None:
    response = client.post(
        f"/api/{bob}/tasks",
        content=b"{not json",
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert_problem(response, 403)


def test_malformed_json_is_400(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.post(
        f"/api/{alice}/tasks",
        content=b'{"title": ',
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_non_json_body_is_415(
    client: TestClient, auth: Auth, alice: str, content_type: str | None
) -> None:
    headers = auth(alice)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(f"/api/{alice}/tasks", content=b'{"title": "x"}', headers=headers)
    assert_problem(response, 415)


def test_json_suffix_media_types_are_accepted(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.post(
        f"/api/{alice}/tasks",
        content=b'{"title": "x"}',
        headers={**auth(alice), "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("field", ["user_id", "id", "created_at", "updated_at", "owner"])
def test_unknown_fields_are_422_never_ignored(
    client: TestClient, auth: Auth, alice: str, bob: str, field: str
) -> None:
    response = client.post(
        f"/api/{alice}/tasks", json={"title": "x", field: bob}, headers=auth(alice)
    )
    body = assert_problem(response, 422)
    assert any(error["field"] == field for error in body["errors"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "\u3000\t"},
        {"title": "x" * 256},
        {"title": 5},
        {"title": "ok", "completed": "true"},
        {"title": "ok", "completed": 1},
        {"title": "ok", "description": "d" * 10_001},
        {"title": "nul\u0000inside"},
        {"title": "ok", "description": "nul\u0000"},
        [],
        "title",
    ],
    ids=lambda b: repr(b)[:40],
)
def test_invalid_bodies_are_422_with_the_offending_fields(
    client: TestClient, auth: Auth, alice: str, body: object
) -> None:
    response = client.post(f"/api/{alice}/tasks", json=body, headers=auth(alice))
    problem = assert_problem(response, 422)
    assert problem["errors"]


def test_limits_apply_to_the_value_as_sent(client: TestClient, auth: Auth, alice: str) -> None:
    exact = client.post(
        f"/api/{alice}/tasks",
        json={"title": "x" * 255, "description": "d" * 10_000},
        headers=auth(alice),
    )
    assert exact.status_code == 201
    padded = client.post(
        f"/api/{alice}/tasks", json={"title": " " + "x" * 255}, headers=auth(alice)
    )
    assert_problem(padded, 422)


def test_lone_surrogate_is_rejected_not_a_500(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.post(
        f"/api/{alice}/tasks",
        content=b'{"title": "\\ud800"}',
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM


def test_body_over_the_limit_is_413(
    client: TestClient, auth: Auth, alice: str, settings: object
) -> None:
    big = b'{"title": "x", "description": "' + b"d" * 300_000 + b'"}'
    response = client.post(
        f"/api/{alice}/tasks",
        content=big,
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert_problem(response, 413)


def test_streamed_body_over_the_limit_is_413(client: TestClient, auth: Auth, alice: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "x", "description": "'
        for _ in range(40):
            yield b"d" * 10_000
        yield b'"}'

    response = client.post(
        f"/api/{alice}/tasks",
        content=chunks(),
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert_problem(response, 413)


def test_largest_schema_valid_body_fits_under_the_limit(
    client: TestClient, auth: Auth, alice: str
) -> None:
    # 10,000 astral characters escaped as \\uXXXX\\uXXXX are 120 KB on the wire: still accepted.
    body = (
        '{"title": "'
        + "\\ud83d\\ude00" * 255
        + '", "description": "'
        + "\\ud83d\\ude00" * 10_000
        + '"}'
    )
    response = client.post(
        f"/api/{alice}/tasks",
        content=body.encode(),
        headers={**auth(alice), "Content-Type": "application/json"},
    )
    assert response.status_code == 201


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/nowhere"), 404)


def test_wrong_method_is_405_with_allow(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.delete(f"/api/{alice}/tasks", headers=auth(alice))
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_malformed_task_id_is_422(client: TestClient, auth: Auth, alice: str) -> None:
    body = assert_problem(client.get(f"/api/{alice}/tasks/not-a-uuid", headers=auth(alice)), 422)
    assert body["errors"][0]["location"] == "path"


def test_error_bodies_carry_no_internals(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.post(f"/api/{alice}/tasks", json={"title": 5}, headers=auth(alice))
    text = response.text.lower()
    for leak in ("traceback", "sqlalchemy", "psycopg", "select ", "insert "):
        assert leak not in text
