"""Contract fixtures: a live `tasks-api serve`, two users with tokens, and a report section.

The measured figures (the schemathesis summary, the linters' verdicts, the client's steps) are
printed at the end of the pytest run, so CI logs show them without `-s`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.contract.fuzzing import Identity
from tests.support.server import RunningServer, base_env, serve

_REPORT: list[str] = []


def report(line: str) -> None:
    """Add a line to the contract section of the end-of-run summary."""
    _REPORT.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("API contract")
        for line in _REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def live_api(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """`tasks-api serve` as deployed: default settings (rate limiting on), a real database."""
    env = base_env(DATABASE_URL=database_url, JWT_SECRET=jwt_secret)
    env.pop("RATE_LIMIT", None)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve(env, log) as server:
        yield server


@pytest.fixture
def identity(token_for: Callable[..., str]) -> Callable[[str], Identity]:
    """A fresh user (unique id) and a token for it."""

    def make(name: str) -> Identity:
        user_id = f"{name}-{uuid.uuid4().hex[:12]}"
        return Identity(name, user_id, token_for(user_id))

    return make
