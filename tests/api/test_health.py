"""Probes: liveness never needs the database; readiness needs it reachable and migrated."""

from __future__ import annotations

from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from db.migrate import head_revision
from tests.conftest import make_settings
from tests.support.postgres import throwaway_database

VERSIONS = Path(__file__).resolve().parents[2] / "alembic" / "versions"


def test_healthz_is_200(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_says_ready_and_nothing_more(client: TestClient) -> None:
    """Finding 10: the body named the schema revision to anyone who asked."""
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_ready_only_at_head(admin_url: str, jwt_secret: str) -> None:
    """One migration behind is not ready, and the answer names neither revision."""
    earliest = sorted(p.name.split("_")[0] for p in VERSIONS.glob("*.py"))[0]
    with throwaway_database(admin_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (earliest,))
        with TestClient(create_app(make_settings(url, jwt_secret))) as client:
            response = client.get("/readyz")
    assert earliest != head_revision()
    assert response.status_code == 503
    assert "tasks-api migrate" in response.json()["detail"]
    assert earliest not in response.text and head_revision() not in response.text


def test_readyz_is_503_on_an_unmigrated_database(admin_url: str, jwt_secret: str) -> None:
    with (
        throwaway_database(admin_url, migrate=False) as url,
        TestClient(create_app(make_settings(url, jwt_secret))) as client,
    ):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert "tasks-api migrate" in response.json()["detail"]


def test_healthz_is_200_while_the_database_is_unreachable(jwt_secret: str) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    with TestClient(create_app(make_settings(unreachable, jwt_secret))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "Retry-After" in ready.headers


def test_healthz_does_not_touch_the_database(client: TestClient) -> None:
    from sqlalchemy import event

    engine = client.app.state.unit_of_work.engine  # type: ignore[attr-defined]
    checkouts: list[object] = []

    def count(*_: object) -> None:
        checkouts.append(1)

    event.listen(engine, "checkout", count)
    try:
        client.get("/healthz")
    finally:
        event.remove(engine, "checkout", count)
    assert checkouts == []
