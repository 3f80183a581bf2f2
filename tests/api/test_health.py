"""Probes: liveness never needs the database; readiness needs it reachable and migrated."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.support.postgres import throwaway_database


def test_healthz_is_200(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_200_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


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
