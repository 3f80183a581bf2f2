"""OWASP API8 (security misconfiguration): bodies are JSON or refused with 415, before parsing.

A form or text body must never be coerced into a task (the classic CSRF-by-form vector), and
the refusal comes before the body is read, so nothing is created or changed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]
NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/json",
]
WRITES = [("POST", ""), ("PUT", "/{id}"), ("PATCH", "/{id}")]


@pytest.mark.parametrize("content_type", [*NOT_JSON, None], ids=[*NOT_JSON, "absent"])
@pytest.mark.parametrize(("method", "suffix"), WRITES, ids=["post", "put", "patch"])
def test_a_body_that_is_not_json_is_415_and_changes_nothing(
    client: TestClient,
    auth: Auth,
    alice: str,
    method: str,
    suffix: str,
    content_type: str | None,
) -> None:
    task = client.post(f"/api/{alice}/tasks", json={"title": "mine"}, headers=auth(alice)).json()
    headers = auth(alice) | ({"Content-Type": content_type} if content_type else {})
    path = f"/api/{alice}/tasks" + suffix.format(id=task["id"])
    response = client.request(method, path, content=b'{"title": "changed"}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/{alice}/tasks", headers=auth(alice)).json() == [task]
