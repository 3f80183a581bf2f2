"""OWASP basics checked on a real `tasks-api serve` process: its output and its HTTP limits.

The server runs at DEBUG with JSON logs, so everything it could ever write is written; the
test then reads that output for tokens and secrets.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx2
import pytest

from tests.support.server import RunningServer, base_env, serve

Mint = Callable[..., str]


@pytest.fixture(scope="module")
def server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = base_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        RATE_LIMIT="off",
        LOG_LEVEL="debug",
        LOG_JSON="true",
    )
    with serve(env, tmp_path_factory.mktemp("owasp") / "serve.log") as running:
        yield running


def test_the_server_never_writes_a_token_or_the_secret(
    server: RunningServer, token_for: Mint, alice: str, bob: str, jwt_secret: str
) -> None:
    valid, expired, others = token_for(alice), token_for(alice, exp=1), token_for(bob)
    base = f"{server.base_url}/api/{alice}/tasks"
    with httpx2.Client(timeout=10) as http:
        bearer = {"Authorization": f"Bearer {valid}"}
        created = http.post(base, json={"title": "x"}, headers=bearer)
        assert created.status_code == 201
        http.get(f"{base}/{created.json()['id']}", headers=bearer)
        http.get(f"{base}?access_token={valid}", headers=bearer)
        http.get(f"{base}?token={valid}")
        for token in (expired, others, valid[:-6] + "AAAAAA"):
            http.get(base, headers={"Authorization": f"Bearer {token}"})
        http.post(base, content=b"{", headers={**bearer, "Content-Type": "application/json"})
    output = server.log()
    assert f"/api/{alice}/tasks" in output, "the server wrote no access lines"
    for secret in (
        valid,
        expired,
        others,
        jwt_secret,
        *(t.rsplit(".", 1)[1] for t in (valid, expired, others)),
    ):
        assert secret not in output


@pytest.mark.parametrize(
    "headers",
    [{"X-Padding": "p" * 200_000}, {f"X-Header-{n}": "v" * 50 for n in range(1000)}],
    ids=["one-huge-header", "a-thousand-headers"],
)
def test_oversized_headers_get_a_clear_4xx_and_the_server_stays_up(
    server: RunningServer, token_for: Mint, alice: str, headers: dict[str, str]
) -> None:
    bearer = {"Authorization": f"Bearer {token_for(alice)}"}
    url = f"{server.base_url}/api/{alice}/tasks"
    response = httpx2.get(url, headers={**bearer, **headers}, timeout=10)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert httpx2.get(url, headers=bearer, timeout=10).status_code == 200


def raw_exchange(server: RunningServer, request: bytes) -> bytes:
    """Send `request` as is and read the server's first answer (no client library in between)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.mark.parametrize(
    ("who", "status"), [("nobody", b"401"), ("other-user", b"403"), ("owner", b"413")]
)
def test_expect_100_continue_is_answered_in_the_documented_order_without_continue(
    server: RunningServer, token_for: Mint, alice: str, bob: str, who: str, status: bytes
) -> None:
    """Finding 4: a body announced over the limit was 413 before authentication. Now 401, 403
    and 413 come in that order, and none of them invites the body with `100 Continue`."""
    authorization = {
        "nobody": b"",
        "other-user": f"Authorization: Bearer {token_for(bob)}\r\n".encode(),
        "owner": f"Authorization: Bearer {token_for(alice)}\r\n".encode(),
    }[who]
    answer = raw_exchange(
        server,
        f"POST /api/{alice}/tasks HTTP/1.1\r\nHost: localhost\r\n".encode()
        + authorization
        + b"Content-Type: application/json\r\nContent-Length: 1000000000\r\n"
        + b"Expect: 100-continue\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"100 Continue" not in answer
    assert b"application/problem+json" in answer


def test_a_websocket_handshake_gets_a_problem_401_from_a_real_server(
    server: RunningServer, alice: str
) -> None:
    """Finding 7, through uvicorn's denial response extension: an HTTP answer, not a close."""
    answer = raw_exchange(
        server,
        f"GET /api/{alice}/tasks HTTP/1.1\r\nHost: localhost\r\n".encode()
        + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"101 Switching Protocols" not in answer


def test_a_head_request_gets_the_headers_of_get_from_a_real_server(
    server: RunningServer, token_for: Mint, alice: str
) -> None:
    bearer = {"Authorization": f"Bearer {token_for(alice)}"}
    url = f"{server.base_url}/api/{alice}/tasks"
    get, head = httpx2.get(url, headers=bearer), httpx2.head(url, headers=bearer)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
