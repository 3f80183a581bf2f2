"""Shared fixtures: a real database per session, the app wired to it, tokens, two users."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.tokens import mint_token
from api.settings import Settings
from tests.support.postgres import embedded_cluster, throwaway_database


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A superuser URL: TEST_DATABASE_URL (e.g. the PostgreSQL 15 service) or an embedded 18."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with embedded_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A throwaway database migrated to head, shared by the session (tests use unique users)."""
    with throwaway_database(admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_urlsafe(48)


def make_settings(database_url: str, jwt_secret: str, **overrides: Any) -> Settings:
    """Settings for tests: never read the developer's .env; rate limiting off unless asked."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": jwt_secret,
        "rate_limit": "off",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(database_url: str, jwt_secret: str) -> Settings:
    return make_settings(database_url, jwt_secret)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def token_for(jwt_secret: str) -> Callable[..., str]:
    def mint(user_id: str, **claims: Any) -> str:
        return mint_token(jwt_secret, user_id, **claims)

    return mint


@pytest.fixture
def alice() -> str:
    return f"alice-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bob() -> str:
    return f"bob-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def auth(token_for: Callable[..., str]) -> Callable[[str], dict[str, str]]:
    """Headers that authenticate as the given user."""

    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(user_id)}"}

    return headers


@pytest.fixture
def owner_conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection as the login/owner role, for arranging rows and reading the catalog."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
