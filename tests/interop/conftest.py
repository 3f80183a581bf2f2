"""Fixtures that run a real, unmodified Better Auth server and point the API at its JWKS.

The install (`npm ci`, cached outside the checkout) and each server start are timed; the
timings, the interop tests' results and one decoded real token are printed in a section of
pytest's terminal summary, so the CI log shows them even under `-q`.

Without Node.js/npm a local run skips these tests with the reason; in CI (`CI=true`) they
fail instead: the interop proof must never silently disappear from CI.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.interop.better_auth import (
    BetterAuthServer,
    NodeUnavailableError,
    ensure_installed,
    sign_up_and_get_token,
)

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

# What the terminal summary prints: (label, text) lines, and (test, outcome) pairs.
SUMMARY: list[tuple[str, str]] = []
RESULTS: list[tuple[str, str]] = []


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


ApiFactory = Callable[..., AbstractContextManager[TestClient]]
IssuerFactory = Callable[..., AbstractContextManager[BetterAuthServer]]


@pytest.fixture(scope="session")
def interop_summary() -> list[tuple[str, str]]:
    """Lines for the "Better Auth interop" section of the terminal summary."""
    return SUMMARY


@pytest.fixture(scope="session")
def better_auth_install() -> Path:
    started = time.time()
    try:
        install_dir = ensure_installed()
    except NodeUnavailableError as exc:
        if IN_CI:
            pytest.fail(f"CI must run the Better Auth interop tests, but: {exc}", pytrace=False)
        pytest.skip(f"Better Auth interop tests need Node.js >= 20 and npm: {exc}")
    elapsed = time.time() - started
    installed_now = (install_dir / ".installed").stat().st_mtime >= started
    kind = "cold: npm ci" if installed_now else "warm: cache hit"
    SUMMARY.append(("install", f"{elapsed:.3f}s ({kind}) in {install_dir}"))
    return install_dir


@pytest.fixture(scope="session")
def start_issuer(better_auth_install: Path) -> IssuerFactory:
    """`with start_issuer(alg=..., expiration=..., port=...) as server:` a running Better Auth."""

    @contextmanager
    def start(**options: Any) -> Iterator[BetterAuthServer]:
        with BetterAuthServer(**options) as server:
            SUMMARY.append(
                (f"start {server.alg} {server.expiration}", f"{server.startup_seconds:.3f}s")
            )
            yield server

    return start


@pytest.fixture(scope="module")
def issuer(start_issuer: IssuerFactory) -> Iterator[BetterAuthServer]:
    """The Better Auth plugin's defaults: EdDSA (Ed25519) keys, 15-minute tokens."""
    with start_issuer(alg="EdDSA") as server:
        yield server


def new_user(server: BetterAuthServer) -> User:
    """A new real user on that server, with the JWT Better Auth issued for their session."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    user_id, token = sign_up_and_get_token(server, email, password, "Interop User")
    return User(id=user_id, email=email, password=password, token=token)


@pytest.fixture
def sign_up() -> Callable[[BetterAuthServer], User]:
    return new_user


@pytest.fixture
def api(database_url: str, jwt_secret: str) -> ApiFactory:
    """`with api(server, **settings) as client:` the app set up as README "Use with Better Auth"."""

    @contextmanager
    def build(server: BetterAuthServer, **overrides: Any) -> Iterator[TestClient]:
        settings = make_settings(
            database_url,
            jwt_secret,
            **{
                "jwt_jwks_url": server.jwks_url,
                "jwt_issuer": server.issuer,
                "jwt_audience": server.audience,
                "jwt_algorithms": (server.alg,),
                **overrides,
            },
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    return build


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        RESULTS.append((report.nodeid.split("::", 1)[-1], report.outcome))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS and not SUMMARY:
        return
    terminalreporter.section("Better Auth interop")
    for name, outcome in RESULTS:
        terminalreporter.write_line(f"{outcome.upper():8} {name}")
    for label, text in SUMMARY:
        terminalreporter.write_line(f"{label}: {text}")
