"""WebSocket handshakes are refused, after authentication, with problem+json (finding 7).

Before, a handshake skipped authentication (it is not an "http" scope) and was closed by the
router without a word. The test client supports ASGI's denial response extension, as uvicorn
does, so the refusal arrives as an HTTP response.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Message

from api.app import create_app
from api.http.size_limits import MAX_HEADER_COUNT
from api.problems import POLICY_VIOLATION, Forbidden, refuse
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]


def denial(client: TestClient, path: str, headers: dict[str, str] | None = None) -> object:
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect(path, headers=dict(headers or {})),
    ):
        pass
    return refused.value


def assert_problem(response: object, status: int) -> None:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.json()["status"] == status  # type: ignore[attr-defined]


def test_a_handshake_without_a_token_is_401(client: TestClient, alice: str) -> None:
    response = denial(client, f"/api/{alice}/tasks")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer ")  # type: ignore[attr-defined]


def test_a_handshake_on_another_users_path_is_403(
    client: TestClient, auth: Auth, alice: str, bob: str
) -> None:
    assert_problem(denial(client, f"/api/{bob}/tasks", auth(alice)), 403)


def test_an_authenticated_handshake_is_404_no_websocket_endpoints(
    client: TestClient, auth: Auth, alice: str
) -> None:
    response = denial(client, f"/api/{alice}/tasks", auth(alice))
    assert_problem(response, 404)
    assert "WebSocket" in response.json()["detail"]  # type: ignore[attr-defined]


def test_a_handshake_outside_the_api_is_404(client: TestClient) -> None:
    assert_problem(denial(client, "/healthz"), 404)


def test_without_the_denial_extension_the_handshake_is_closed() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/api/x/tasks", "headers": [], "extensions": {}}
    anyio.run(refuse, Forbidden("no"), scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": POLICY_VIOLATION}]


def test_handshakes_with_bad_tokens_spend_the_address_budget(
    database_url: str, jwt_secret: str, alice: str
) -> None:
    """The per-address limit that keeps junk tokens from flooding the verifier over HTTP holds
    for handshakes too: once the budget is spent, the answer is 429, not another 401."""
    settings = make_settings(
        database_url, jwt_secret, rate_limit="100/s", rate_limit_address="2/min"
    )
    junk = {"Authorization": "Bearer a.b.c"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        statuses = [
            denial(client, f"/api/{alice}/tasks", junk).status_code  # type: ignore[attr-defined]
            for _ in range(4)
        ]
    assert statuses[0] == 401
    assert statuses[-1] == 429


def test_a_handshake_with_too_many_headers_is_431(client: TestClient, alice: str) -> None:
    many = {f"X-Filler-{n}": "x" for n in range(MAX_HEADER_COUNT + 1)}
    assert_problem(denial(client, f"/api/{alice}/tasks", many), 431)
