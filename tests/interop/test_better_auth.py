"""The API accepts exactly what a real Better Auth deployment issues, and nothing else.

A real, unmodified Better Auth server (JWT plugin, in-memory adapter) runs on a loopback port;
users sign up through its HTTP API and get their JWT from `GET /api/auth/token`. The API is
configured as the README section "Use with Better Auth" says:
JWT_JWKS_URL=<base>/api/auth/jwks, JWT_ISSUER = JWT_AUDIENCE = <base>, JWT_ALGORITHMS=EdDSA.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import jwt
import pytest

from tests.interop.better_auth import BetterAuthServer, fetch_jwks
from tests.interop.conftest import ApiFactory, IssuerFactory, User, new_user

SignUp = Callable[[BetterAuthServer], User]


def test_real_token_has_the_documented_shape(
    issuer: BetterAuthServer, sign_up: SignUp, interop_summary: list[tuple[str, str]]
) -> None:
    user = sign_up(issuer)
    header = jwt.get_unverified_header(user.token)
    claims = jwt.decode(user.token, options={"verify_signature": False})
    printed = json.dumps({"header": header, "claims": claims}, indent=2)
    print(f"\nA real Better Auth token, decoded:\n{printed}")
    interop_summary.append(("decoded real token", printed))

    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in fetch_jwks(issuer)["keys"]}
    assert claims["sub"] == user.id
    assert claims["iss"] == claims["aud"] == issuer.base_url
    assert isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == 15 * 60


def test_each_user_creates_and_lists_only_their_own_tasks(
    issuer: BetterAuthServer, sign_up: SignUp, api: ApiFactory
) -> None:
    alice, bob = sign_up(issuer), sign_up(issuer)
    with api(issuer) as client:
        for user in (alice, bob):
            created = client.post(
                f"/api/{user.id}/tasks",
                json={"title": f"task of {user.email}"},
                headers=user.headers,
            )
            assert created.status_code == 201, created.text

        for user in (alice, bob):
            listed = client.get(f"/api/{user.id}/tasks", headers=user.headers)
            assert listed.status_code == 200, listed.text
            assert [t["title"] for t in listed.json()] == [f"task of {user.email}"]


def test_token_on_another_users_path_is_403(
    issuer: BetterAuthServer, sign_up: SignUp, api: ApiFactory
) -> None:
    alice, bob = sign_up(issuer), sign_up(issuer)
    with api(issuer) as client:
        response = client.get(f"/api/{bob.id}/tasks", headers=alice.headers)
    assert response.status_code == 403


def test_another_users_task_id_under_own_path_is_404(
    issuer: BetterAuthServer, sign_up: SignUp, api: ApiFactory
) -> None:
    alice, bob = sign_up(issuer), sign_up(issuer)
    with api(issuer) as client:
        created = client.post(f"/api/{bob.id}/tasks", json={"title": "bob's"}, headers=bob.headers)
        task_id = created.json()["id"]

        response = client.get(f"/api/{alice.id}/tasks/{task_id}", headers=alice.headers)

    assert response.status_code == 404


@pytest.fixture(scope="module")
def stranger(start_issuer: IssuerFactory) -> User:
    """A real user of a second Better Auth instance: same software and alg, other keys."""
    with start_issuer(alg="EdDSA") as other:
        return new_user(other)


@pytest.mark.parametrize("checks_iss_aud", [True, False], ids=["as-documented", "keys-alone"])
def test_token_from_a_second_better_auth_instance_is_401(
    issuer: BetterAuthServer, stranger: User, api: ApiFactory, checks_iss_aud: bool
) -> None:
    unchecked = {} if checks_iss_aud else {"jwt_issuer": None, "jwt_audience": None}
    with api(issuer, **unchecked) as client:
        response = client.get(f"/api/{stranger.id}/tasks", headers=stranger.headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    if not checks_iss_aud:
        assert "unknown" in response.headers["www-authenticate"]


def test_issuer_restart_with_new_keys_is_followed_after_one_bounded_refetch(
    start_issuer: IssuerFactory, sign_up: SignUp, api: ApiFactory
) -> None:
    refetch_interval = 1.0
    with start_issuer(alg="EdDSA") as issuer_v1:
        old = sign_up(issuer_v1)
        port = issuer_v1.port
        with api(issuer_v1, jwt_jwks_min_refetch_seconds=refetch_interval) as client:
            assert client.get(f"/api/{old.id}/tasks", headers=old.headers).status_code == 200
            issuer_v1.stop()
            with start_issuer(alg="EdDSA", port=port) as issuer_v2:
                new = sign_up(issuer_v2)
                assert (
                    jwt.get_unverified_header(new.token)["kid"]
                    != jwt.get_unverified_header(old.token)["kid"]
                )
                # The retired key is still cached: the old token works until the set is refetched.
                assert client.get(f"/api/{old.id}/tasks", headers=old.headers).status_code == 200

                time.sleep(refetch_interval)  # let the refetch window open
                new_response = client.get(f"/api/{new.id}/tasks", headers=new.headers)
                old_response = client.get(f"/api/{old.id}/tasks", headers=old.headers)

    assert new_response.status_code == 200, new_response.text
    assert old_response.status_code == 401
    assert "unknown" in old_response.headers["www-authenticate"]


def test_expired_token_is_401(
    start_issuer: IssuerFactory, sign_up: SignUp, api: ApiFactory
) -> None:
    with start_issuer(alg="EdDSA", expiration="1s") as short_lived:
        user = sign_up(short_lived)
        exp = jwt.decode(user.token, options={"verify_signature": False})["exp"]
        with api(short_lived, jwt_leeway_seconds=0) as client:
            time.sleep(max(0.0, exp - time.time()) + 0.2)
            response = client.get(f"/api/{user.id}/tasks", headers=user.headers)

    assert response.status_code == 401
    assert 'error_description="the token has expired"' in response.headers["www-authenticate"]


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def other_alg_issuer(
    request: pytest.FixtureRequest, start_issuer: IssuerFactory
) -> Iterator[BetterAuthServer]:
    with start_issuer(alg=request.param) as server:
        yield server


def test_token_signed_with_another_algorithm_is_accepted_when_allowed(
    other_alg_issuer: BetterAuthServer, sign_up: SignUp, api: ApiFactory
) -> None:
    user = sign_up(other_alg_issuer)
    assert jwt.get_unverified_header(user.token)["alg"] == other_alg_issuer.alg
    with api(other_alg_issuer) as client:
        created = client.post(f"/api/{user.id}/tasks", json={"title": "t"}, headers=user.headers)
        listed = client.get(f"/api/{user.id}/tasks", headers=user.headers)
    assert created.status_code == 201, created.text
    assert [t["title"] for t in listed.json()] == ["t"]


def test_token_signed_with_another_algorithm_is_refused_when_only_eddsa_is_allowed(
    other_alg_issuer: BetterAuthServer, sign_up: SignUp, api: ApiFactory
) -> None:
    user = sign_up(other_alg_issuer)
    with api(other_alg_issuer, jwt_algorithms=("EdDSA",)) as client:
        response = client.get(f"/api/{user.id}/tasks", headers=user.headers)
    assert response.status_code == 401
    assert "algorithm is not allowed" in response.headers["www-authenticate"]
