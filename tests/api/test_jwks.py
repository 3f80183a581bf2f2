"""Asymmetric issuers: tokens verified against a JWKS served by a local HTTP server (or a file).

Keys are generated when the tests run. The server counts its requests, so "never once per
request" and "at most one refetch per interval" are checked by counting, not by timing.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings
from tests.support.jwks import (
    claims_for,
    closed_port_url,
    jwks_of,
    jwks_server,
    new_key,
)

AppFactory = Callable[..., Any]


@pytest.fixture
def user() -> str:
    return f"jwks-user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app_client(database_url: str, jwt_secret: str) -> AppFactory:
    """`with app_client(jwks_url, **settings) as client:` an app that trusts that JWKS."""

    @contextmanager
    def build(jwks_url: str, **overrides: Any) -> Iterator[TestClient]:
        values: dict[str, Any] = {
            "jwt_algorithms": ("EdDSA", "RS256", "ES256"),
            "jwt_jwks_url": jwks_url,
            "jwt_jwks_min_refetch_seconds": 0,
            **overrides,
        }
        settings = make_settings(database_url, jwt_secret, **values)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    return build


def list_tasks(client: TestClient, user: str, token: str) -> Any:
    return client.get(f"/api/{user}/tasks", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("alg", ["EdDSA", "RS256", "ES256"])
def test_token_signed_by_a_published_key_is_accepted(
    app_client: AppFactory, user: str, alg: str
) -> None:
    key = new_key(alg)
    with jwks_server(key) as server, app_client(server.url) as client:
        response = list_tasks(client, user, key.sign(claims_for(user)))
    assert response.status_code == 200, response.text


def test_jwks_can_be_a_file_path(app_client: AppFactory, user: str, tmp_path: Path) -> None:
    key = new_key("EdDSA")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(key)))
    with app_client(str(path)) as client:
        assert list_tasks(client, user, key.sign(claims_for(user))).status_code == 200


def test_keys_are_fetched_at_startup_before_any_request(app_client: AppFactory) -> None:
    with jwks_server(new_key("EdDSA")) as server, app_client(server.url):
        assert server.requests == 1


def test_keys_are_fetched_once_not_per_request(app_client: AppFactory, user: str) -> None:
    key = new_key("EdDSA")
    with jwks_server(key) as server, app_client(server.url) as client:
        statuses = {
            list_tasks(client, user, key.sign(claims_for(user))).status_code for _ in range(10)
        }
        assert statuses == {200}
        assert server.requests == 1


def test_rotated_key_is_fetched_when_a_token_names_an_unknown_kid(
    app_client: AppFactory, user: str
) -> None:
    old, new = new_key("EdDSA"), new_key("EdDSA")
    with jwks_server(old) as server, app_client(server.url) as client:
        assert list_tasks(client, user, old.sign(claims_for(user))).status_code == 200
        server.publish(new)

        response = list_tasks(client, user, new.sign(claims_for(user)))

        assert response.status_code == 200, response.text
        assert server.requests == 2


def test_retired_key_is_refused_once_the_rotated_set_is_fetched(
    app_client: AppFactory, user: str
) -> None:
    old, new = new_key("RS256"), new_key("RS256")
    with jwks_server(old) as server, app_client(server.url) as client:
        server.publish(new)
        assert list_tasks(client, user, new.sign(claims_for(user))).status_code == 200

        response = list_tasks(client, user, old.sign(claims_for(user)))

        assert response.status_code == 401
        assert "unknown" in response.headers["www-authenticate"]


def test_unknown_kids_do_not_refetch_within_the_minimum_interval(
    app_client: AppFactory, user: str
) -> None:
    key = new_key("EdDSA")
    with (
        jwks_server(key) as server,
        app_client(server.url, jwt_jwks_min_refetch_seconds=3600) as client,
    ):
        forged = [new_key("EdDSA", kid=f"forged-{i}") for i in range(20)]
        statuses = {list_tasks(client, user, k.sign(claims_for(user))).status_code for k in forged}
        assert statuses == {401}
        assert server.requests == 1  # the fetch at startup, none since


def test_unreachable_jwks_without_cached_keys_is_503_with_retry_after(
    app_client: AppFactory, user: str
) -> None:
    key = new_key("EdDSA")
    with app_client(closed_port_url()) as client:
        response = list_tasks(client, user, key.sign(claims_for(user)))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1


def test_jwks_answering_an_error_status_without_cached_keys_is_503(
    app_client: AppFactory, user: str
) -> None:
    key = new_key("EdDSA")
    with jwks_server(key) as server:
        server.status = 500
        with app_client(server.url) as client:
            response = list_tasks(client, user, key.sign(claims_for(user)))
    assert response.status_code == 503
    assert "retry-after" in response.headers


def test_jwks_slower_than_the_timeout_is_503(app_client: AppFactory, user: str) -> None:
    key = new_key("EdDSA")
    with jwks_server(key) as server:
        server.release.clear()  # every fetch hangs until released
        with app_client(server.url, jwt_jwks_timeout_seconds=0.2) as client:
            response = list_tasks(client, user, key.sign(claims_for(user)))
        server.release.set()
    assert response.status_code == 503


def test_issuer_coming_back_is_used_again(app_client: AppFactory, user: str) -> None:
    key = new_key("EdDSA")
    token = key.sign(claims_for(user))
    with jwks_server(key) as server:
        server.status = 500
        with app_client(server.url) as client:
            assert list_tasks(client, user, token).status_code == 503
            server.status = 200
            assert list_tasks(client, user, token).status_code == 200


def test_jwks_fetch_does_not_block_the_event_loop(app_client: AppFactory, user: str) -> None:
    key = new_key("EdDSA")
    with jwks_server() as server, app_client(server.url) as client:
        server.publish(key)  # the set fetched at startup was empty: the next token fetches
        server.release.clear()
        held: list[int] = []
        waiting = threading.Thread(
            target=lambda: held.append(
                list_tasks(client, user, key.sign(claims_for(user))).status_code
            )
        )
        waiting.start()
        deadline = time.monotonic() + 10
        while server.requests < 2:  # until the fetch is in flight, held by the server
            assert time.monotonic() < deadline, "the unknown kid never triggered a fetch"
            time.sleep(0.01)
        health: list[int] = []
        probe = threading.Thread(target=lambda: health.append(client.get("/healthz").status_code))
        probe.start()
        probe.join(timeout=5)
        answered_while_held = health == [200] and not held
        server.release.set()
        waiting.join(timeout=10)
    assert answered_while_held, "the event loop waited for the JWKS fetch"
    assert held == [200]


def test_shared_secret_and_jwks_configured_together_both_verify(
    app_client: AppFactory, user: str, jwt_secret: str
) -> None:
    key = new_key("EdDSA")
    hs256 = jwt.encode(claims_for(user), jwt_secret, algorithm="HS256")
    with (
        jwks_server(key) as server,
        app_client(server.url, jwt_algorithms=("HS256", "EdDSA")) as client,
    ):
        assert list_tasks(client, user, hs256).status_code == 200
        assert list_tasks(client, user, key.sign(claims_for(user))).status_code == 200


def test_shared_secret_token_is_refused_when_only_jwks_algorithms_are_allowed(
    app_client: AppFactory, user: str, jwt_secret: str
) -> None:
    key = new_key("EdDSA")
    hs256 = jwt.encode(claims_for(user), jwt_secret, algorithm="HS256")
    with jwks_server(key) as server, app_client(server.url, jwt_algorithms=("EdDSA",)) as client:
        response = list_tasks(client, user, hs256)
    assert response.status_code == 401
    assert "algorithm is not allowed" in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("token_alg", "published_alg"),
    [("ES256", "RS256"), ("EdDSA", "ES256"), ("RS256", "EdDSA"), ("ES256", "EdDSA")],
)
def test_a_published_key_is_used_only_for_its_own_algorithm_family(
    app_client: AppFactory, user: str, token_alg: str, published_alg: str
) -> None:
    published = new_key(published_alg, kid="shared-kid")
    signer = new_key(token_alg, kid="shared-kid")
    with jwks_server(published) as server, app_client(server.url) as client:
        response = list_tasks(client, user, signer.sign(claims_for(user)))
    assert response.status_code == 401
    assert "does not belong to its algorithm" in response.headers["www-authenticate"]


def test_a_published_key_is_not_used_for_another_algorithm_it_names(
    app_client: AppFactory, user: str
) -> None:
    key = new_key("RS256")
    labelled_rs512 = {**key.jwk, "alg": "RS512"}
    with jwks_server() as server:
        server.document = {"keys": [labelled_rs512]}
        with app_client(server.url) as client:
            response = list_tasks(client, user, key.sign(claims_for(user)))
    assert response.status_code == 401


def test_a_symmetric_key_in_the_jwks_is_never_trusted(app_client: AppFactory, user: str) -> None:
    published_secret = secrets.token_bytes(48)
    oct_key = {
        "kty": "oct",
        "kid": "oct-1",
        "k": base64.urlsafe_b64encode(published_secret).rstrip(b"=").decode(),
    }
    token = jwt.encode(
        claims_for(user), published_secret, algorithm="HS256", headers={"kid": "oct-1"}
    )
    with jwks_server() as server:
        server.document = {"keys": [oct_key]}
        with app_client(server.url, jwt_algorithms=("HS256", "EdDSA")) as client:
            response = list_tasks(client, user, token)
    assert response.status_code == 401
