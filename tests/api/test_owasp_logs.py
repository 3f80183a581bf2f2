"""Neither tokens nor secrets ever reach the logs, whatever the request and the log level.

Read in process (every record at DEBUG, through caplog) for tokens that are valid, expired,
tampered, for another user, or sent where they do not belong (the query string).
tests/api/test_owasp_real_server.py reads a real `tasks-api serve` process's output too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Mint = Callable[..., str]
CLIENT_LOGGERS = ("httpx2", "httpcore")


def credentials_sent(client: TestClient, token_for: Mint, alice: str, bob: str) -> list[str]:
    """Make a request with each kind of token; return every token used."""
    valid = token_for(alice)
    expired = token_for(alice, exp=1)
    tampered = valid[:-6] + "AAAAAA"
    others = token_for(bob)
    base = f"/api/{alice}/tasks"
    created = client.post(base, json={"title": "x"}, headers={"Authorization": f"Bearer {valid}"})
    client.get(f"{base}/{created.json()['id']}", headers={"Authorization": f"bearer {valid}"})
    client.get(f"{base}?access_token={valid}", headers={"Authorization": f"Bearer {valid}"})
    client.get(f"{base}?token={valid}")
    for token in (expired, tampered, others):
        client.get(base, headers={"Authorization": f"Bearer {token}"})
    client.post(
        base,
        content=b"{",
        headers={"Authorization": f"Bearer {valid}", "Content-Type": "application/json"},
    )
    return [valid, expired, tampered, others]


def signatures(tokens: list[str]) -> list[str]:
    """A token's signature is the part that must never leak; header+payload are not secret."""
    return [t.rsplit(".", 1)[1] for t in tokens]


def test_no_token_or_secret_is_logged_at_debug(
    client: TestClient,
    token_for: Mint,
    alice: str,
    bob: str,
    jwt_secret: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = credentials_sent(client, token_for, alice, bob)
    # The test's own HTTP client (httpx2) logs the URLs it requests; that is not the service.
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name == "tasks_api.access" for r in records), "logs were not captured"
    logged = "\n".join(
        [caplog.handler.format(r) for r in records]
        + [r.getMessage() for r in records]
        + [str(r.__dict__) for r in records]
    )
    for secret in [*tokens, *signatures(tokens), jwt_secret]:
        assert secret not in logged
