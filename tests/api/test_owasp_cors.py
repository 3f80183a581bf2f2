"""OWASP API8: CORS is off unless CORS_ORIGINS lists origins, and then only for those.

Bearer tokens are not cookies, so CORS does not guard credentials here; it still must not
advertise the API to every web origin, nor ever answer `*` or allow credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]
ALLOWED = "https://app.example.test"
OTHER = "https://evil.example.test"


def preflight(client: TestClient, user: str, origin: str) -> object:
    return client.options(
        f"/api/{user}/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.fixture
def cors_client(database_url: str, jwt_secret: str) -> Iterator[TestClient]:
    settings = make_settings(database_url, jwt_secret, cors_origins=(ALLOWED,))
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_without_an_allow_list_no_origin_is_allowed(
    client: TestClient, auth: Auth, alice: str
) -> None:
    for origin in (ALLOWED, OTHER):
        response = client.get(f"/api/{alice}/tasks", headers={**auth(alice), "Origin": origin})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers


def test_without_an_allow_list_a_preflight_is_not_granted(client: TestClient, alice: str) -> None:
    response = preflight(client, alice, ALLOWED)
    assert response.status_code >= 400  # type: ignore[attr-defined]
    assert not any(h.startswith("access-control-") for h in response.headers)  # type: ignore[attr-defined]


def test_a_listed_origin_is_allowed_by_name(
    cors_client: TestClient, auth: Auth, alice: str
) -> None:
    response = cors_client.get(f"/api/{alice}/tasks", headers={**auth(alice), "Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "access-control-allow-credentials" not in response.headers
    granted = preflight(cors_client, alice, ALLOWED)
    assert granted.status_code == 200  # type: ignore[attr-defined]
    assert granted.headers["access-control-allow-origin"] == ALLOWED  # type: ignore[attr-defined]


def test_an_unlisted_origin_is_not_allowed_even_with_a_list(
    cors_client: TestClient, auth: Auth, alice: str
) -> None:
    response = cors_client.get(f"/api/{alice}/tasks", headers={**auth(alice), "Origin": OTHER})
    assert "access-control-allow-origin" not in response.headers
    refused = preflight(cors_client, alice, OTHER)
    assert refused.headers.get("access-control-allow-origin") is None  # type: ignore[attr-defined]
    assert refused.status_code == 400  # type: ignore[attr-defined]
