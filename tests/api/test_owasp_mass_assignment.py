"""OWASP API3 (mass assignment): server-owned fields in a body are refused, never applied.

`user_id` would move a task to another tenant, `id` would let a client pick (and so probe) ids,
the timestamps would rewrite history. Each is 422 naming the field, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]
SERVER_OWNED = {
    "user_id": "someone-else",
    "id": "00000000-0000-4000-8000-000000000000",
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
}
WRITES = [("POST", ""), ("PUT", "/{id}"), ("PATCH", "/{id}")]


@pytest.fixture
def own_task(client: TestClient, auth: Auth, alice: str) -> dict[str, Any]:
    response = client.post(f"/api/{alice}/tasks", json={"title": "mine"}, headers=auth(alice))
    assert response.status_code == 201
    return dict(response.json())


@pytest.mark.parametrize("field", sorted(SERVER_OWNED))
@pytest.mark.parametrize(("method", "suffix"), WRITES, ids=["post", "put", "patch"])
def test_a_server_owned_field_in_a_body_is_422_naming_it(
    client: TestClient,
    auth: Auth,
    alice: str,
    bob: str,
    own_task: dict[str, Any],
    method: str,
    suffix: str,
    field: str,
) -> None:
    body = {"title": "changed", field: bob if field == "user_id" else SERVER_OWNED[field]}
    path = f"/api/{alice}/tasks" + suffix.format(id=own_task["id"])
    response = client.request(method, path, json=body, headers=auth(alice))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(("method", "suffix"), WRITES, ids=["post", "put", "patch"])
def test_a_refused_mass_assignment_changes_nothing(
    client: TestClient,
    auth: Auth,
    alice: str,
    bob: str,
    own_task: dict[str, Any],
    method: str,
    suffix: str,
) -> None:
    path = f"/api/{alice}/tasks" + suffix.format(id=own_task["id"])
    client.request(method, path, json={"title": "changed", **SERVER_OWNED}, headers=auth(alice))
    listed = client.get(f"/api/{alice}/tasks", headers=auth(alice)).json()
    assert listed == [own_task]
    assert client.get(f"/api/{bob}/tasks", headers=auth(bob)).json() == []
