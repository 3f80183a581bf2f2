"""Answers a fuzzer rarely provokes (429, 503, 431, 413, 401) are exactly as the document says.

Each response is checked against the committed openapi.json: its status is declared for the
operation, its body validates against the declared schema, and every declared header it must
carry is there and matches its schema.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "openapi.json").read_text()
)
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_conforms(response: httpx2.Response, path: str, method: str) -> None:
    operation = DOCUMENT["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{status} is not declared for {method} {path}"
    declared = _resolve(operation["responses"][status])
    media_type = response.headers["content-type"].split(";")[0]
    schema = declared["content"][media_type]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": DOCUMENT["components"]})
    errors = [e.message for e in validator.iter_errors(response.json())]
    assert not errors, errors
    for name, header in declared.get("headers", {}).items():
        header = _resolve(header)
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{status} lacks required header {name}"
        if value is not None and "pattern" in header["schema"]:
            assert re.search(header["schema"]["pattern"], value), (name, value)


@pytest.fixture
def client_with(
    database_url: str, jwt_secret: str
) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(url: str = database_url, **overrides: object) -> TestClient:
        client = TestClient(create_app(make_settings(url, jwt_secret, **overrides)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_429_is_as_declared(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    client = client_with(rate_limit="60/min", rate_limit_burst_seconds=1)
    responses = [client.get(f"/api/{alice}/tasks", headers=auth(alice)) for _ in range(3)]
    assert responses[0].status_code == 200
    assert_conforms(responses[0], "/api/{user_id}/tasks", "get")
    assert responses[-1].status_code == 429
    assert_conforms(responses[-1], "/api/{user_id}/tasks", "get")


def test_503_is_as_declared(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    client = client_with(UNREACHABLE, db_connect_timeout_seconds=1, db_pool_timeout_seconds=1)
    response = client.get(f"/api/{alice}/tasks/{uuid.uuid4()}", headers=auth(alice))
    assert response.status_code == 503
    assert_conforms(response, "/api/{user_id}/tasks/{task_id}", "get")


def test_431_is_as_declared(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    client = client_with()
    headers = {**auth(alice), **{f"X-Filler-{n}": "x" for n in range(120)}}
    response = client.get(f"/api/{alice}/tasks", headers=headers)
    assert response.status_code == 431
    assert_conforms(response, "/api/{user_id}/tasks", "get")


def test_413_is_as_declared(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    client = client_with(max_body_bytes=1024)
    response = client.post(
        f"/api/{alice}/tasks", headers=auth(alice), json={"title": "x", "description": "y" * 2000}
    )
    assert response.status_code == 413
    assert_conforms(response, "/api/{user_id}/tasks", "post")


def test_401_is_as_declared(client_with: Callable[..., TestClient], alice: str) -> None:
    response = client_with().get(f"/api/{alice}/tasks", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert_conforms(response, "/api/{user_id}/tasks", "get")


def test_422_listing_many_unknown_fields_is_as_declared(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    body = {"title": "x", **{f"unknown_{n}_" + "k" * 300: n for n in range(150)}}
    response = client_with().post(f"/api/{alice}/tasks", headers=auth(alice), json=body)
    assert response.status_code == 422
    assert_conforms(response, "/api/{user_id}/tasks", "post")
    assert len(response.json()["errors"]) == 100


def _declared_headers(kind: str) -> set[str]:
    names: set[str] = set()
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            if kind == "request":
                names |= {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            else:
                for response in operation["responses"].values():
                    names |= set(_resolve(response).get("headers", {}))
    return names


def test_a_browser_may_send_every_declared_request_header(
    client_with: Callable[..., TestClient], alice: str
) -> None:
    origin = "https://app.example.com"
    wanted = {"Authorization", "Content-Type", *_declared_headers("request")}
    preflight = client_with(cors_origins=(origin,)).options(
        f"/api/{alice}/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ", ".join(sorted(wanted)),
        },
    )
    assert preflight.status_code == 200, preflight.text
    allowed = preflight.headers["access-control-allow-headers"].lower().split(",")
    assert {h.lower() for h in wanted} <= {h.strip() for h in allowed}


def test_a_browser_may_read_every_declared_response_header(
    client_with: Callable[..., TestClient], alice: str, auth: Callable[[str], dict[str, str]]
) -> None:
    origin = "https://app.example.com"
    response = client_with(cors_origins=(origin,)).get(
        f"/api/{alice}/tasks", headers={**auth(alice), "Origin": origin}
    )
    exposed_list = response.headers["access-control-expose-headers"].lower().split(",")
    exposed = {h.strip() for h in exposed_list}
    declared = {h.lower() for h in _declared_headers("response")} - {"access-control-allow-origin"}
    assert declared <= exposed, declared - exposed
