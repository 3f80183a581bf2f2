"""Neither tokens nor secrets ever reach the logs, whatever the request and the log level.

Read in process (every record at DEBUG, through caplog) for tokens that are valid, expired,
tampered, for another user, or sent where they do not belong (the query string).
tests/api/test_owasp_real_server.py reads a real `tasks-api serve` process's output too.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx2
import pytest
from fastapi.testclient import TestClient

from api.observability.logs import TRACEBACK_INDENT, TextFormatter
from tests.support.server import RunningServer, base_env, serve

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


# -- Finding 2: a client cannot write a line of its own into a real server's log --------------

# A whole forged access line, as the attack round sent it, behind each kind of line break.
FORGED = "FORGED 2026-12-01 07:40:00,000 INFO tasks_api.access [x] DELETE /api/bob/tasks/1 204"
LINE_BREAKS = {
    "lf": "%0A",
    "cr": "%0D",
    "crlf": "%0D%0A",
    "nel": "%C2%85",  # U+0085: a line break to Python's str.splitlines and many viewers
    "line-separator": "%E2%80%A8",  # U+2028: a line break to JavaScript
    "paragraph-separator": "%E2%80%A9",
}


@pytest.fixture(scope="module", params=["text", "json"])
def served(
    request: pytest.FixtureRequest,
    database_url: str,
    jwt_secret: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    env = base_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        RATE_LIMIT="off",
        LOG_JSON=str(request.param == "json").lower(),
    )
    log_path = tmp_path_factory.mktemp(f"forging-{request.param}") / "serve.log"
    with serve(env, log_path) as running:
        yield running


def log_with(server: RunningServer, marker: str, count: int) -> str:
    """The server's output once it holds `count` lines naming `marker`: each access line is
    written just after its response is sent, so the last may not be there yet."""
    deadline = time.monotonic() + 30
    while len(lines_with(output := server.log(), marker)) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return output


def lines_with(output: str, marker: str) -> list[str]:
    return [line for line in output.splitlines() if marker in line]


def forged_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lstrip('{"').startswith("FORGED")]


@pytest.mark.parametrize("line_break", LINE_BREAKS.values(), ids=LINE_BREAKS.keys())
def test_a_path_cannot_forge_a_log_line_on_a_real_server(
    served: RunningServer, line_break: str
) -> None:
    marker = f"forging-{secrets.token_hex(4)}"
    target = f"/{marker}{line_break}{quote(FORGED)}"
    with httpx2.Client(base_url=served.base_url, timeout=10) as http:
        # Without a token, as sent; and under /api/, where authentication answers it.
        assert http.get(target).status_code == 404
        assert http.get(f"/api{target}").status_code == 401
    output = log_with(served, marker, 2)
    lines = lines_with(output, marker)
    assert len(lines) == 2, "each request must write exactly one access line"
    assert forged_lines(output) == []
    for line in lines:
        assert "FORGED" in line, "the rest of the path must stay on the access line"
        if line.startswith("{"):
            assert json.loads(line)["path"].endswith(FORGED)


def test_an_exception_message_cannot_forge_a_text_log_line() -> None:
    """A traceback keeps its lines, but every one after the record's first is indented."""
    try:
        raise ValueError(f"bad path /x\n{FORGED}\u2028{FORGED}")
    except ValueError:
        record = logging.LogRecord(
            "tasks_api", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    lines = TextFormatter().format(record).splitlines()
    assert len(lines) > 2 and "FORGED" in lines[-1]
    assert all(line.startswith(TRACEBACK_INDENT) for line in lines[1:])
    assert forged_lines("\n".join(lines)) == []
