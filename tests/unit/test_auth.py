"""TokenVerifier: the token header's alg picks the key source, and only among configured ones."""

from __future__ import annotations

import secrets
from typing import Any

import jwt
import pytest

from api.auth.tokens import InvalidToken, KeyFetchNeeded, TokenVerifier
from api.settings import Settings
from tests.support.jwks import claims_for, new_key

SECRET = secrets.token_urlsafe(48)


class RecordingResolver:
    def __init__(self, key: Any = None) -> None:
        self.key = key
        self.calls: list[tuple[str | None, str, bool]] = []

    def __call__(self, kid: str | None, alg: str, *, may_fetch: bool = True) -> Any:
        self.calls.append((kid, alg, may_fetch))
        if self.key is None:
            raise KeyFetchNeeded(lambda: None)
        return self.key


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, jwt_secret=SECRET, **values)


def test_hmac_token_is_never_checked_against_the_published_keys() -> None:
    resolver = RecordingResolver()
    verifier = TokenVerifier(settings(jwt_algorithms="HS256,EdDSA"), resolve_key=resolver)
    token = jwt.encode(claims_for("alice"), SECRET, algorithm="HS256", headers={"kid": "ed-1"})

    assert verifier.verify(token) == "alice"
    assert resolver.calls == []


def test_asymmetric_token_is_refused_when_no_jwks_is_configured() -> None:
    key = new_key("EdDSA")
    verifier = TokenVerifier(settings(jwt_algorithms="HS256,EdDSA"))
    with pytest.raises(InvalidToken, match="not allowed"):
        verifier.verify(key.sign(claims_for("alice")))


def test_asymmetric_token_is_verified_with_the_resolved_key() -> None:
    key = new_key("ES256", kid="es-1")
    resolver = RecordingResolver(key.private.public_key())
    verifier = TokenVerifier(settings(jwt_algorithms="ES256"), resolve_key=resolver)

    assert verifier.verify(key.sign(claims_for("bob"))) == "bob"
    assert resolver.calls == [("es-1", "ES256", True)]


def test_a_resolver_asking_for_a_fetch_is_passed_to_the_caller() -> None:
    key = new_key("EdDSA", kid="ed-1")
    resolver = RecordingResolver()
    verifier = TokenVerifier(settings(jwt_algorithms="EdDSA"), resolve_key=resolver)
    with pytest.raises(KeyFetchNeeded):
        verifier.verify(key.sign(claims_for("bob")))


def test_verify_without_fetching_tells_the_resolver() -> None:
    key = new_key("EdDSA", kid="ed-1")
    resolver = RecordingResolver(key.private.public_key())
    verifier = TokenVerifier(settings(jwt_algorithms="EdDSA"), resolve_key=resolver)

    verifier.verify(key.sign(claims_for("bob")), may_fetch=False)

    assert resolver.calls == [("ed-1", "EdDSA", False)]
