"""OWASP basics checked on a real `tasks-api serve` process: its output and its HTTP limits.

The server runs at DEBUG with JSON logs, so everything it could ever write is written; the
test then reads that output for tokens and secrets.
"""

from __future__ import annotations

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
