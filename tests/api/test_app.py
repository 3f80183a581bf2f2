"""api/app.py's wiring that no single route shows."""

from __future__ import annotations

import anyio.to_thread
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.conftest import make_settings


def _thread_tokens() -> float:
    return anyio.to_thread.current_default_thread_limiter().total_tokens


def test_a_worker_runs_no_more_blocking_handlers_at_once_than_its_pool_keeps_connections(
    database_url: str, jwt_secret: str
) -> None:
    """More threads would only wait for a connection, or open an overflow connection that is
    closed again when returned (connection churn under load, docs/performance.md)."""
    settings: Settings = make_settings(
        database_url, jwt_secret, db_pool_size=3, db_pool_max_overflow=7
    )
    with TestClient(create_app(settings)) as client:
        assert client.portal is not None
        assert client.portal.call(_thread_tokens) == 3
