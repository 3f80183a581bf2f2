"""CachedTokenVerifier: a token's signature is verified once; its time claims on every use."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from api.auth.jwks import JwksKeys
from api.auth.token_cache import ENTRY_OVERHEAD_BYTES, CachedTokenVerifier
from api.auth.tokens import InvalidToken, KeyFetchNeeded, TokenVerifier
from api.settings import Settings
from tests.support.jwks import SigningKey, claims_for, jwks_of, new_key

SECRET = secrets.token_urlsafe(48)
LEEWAY = 30


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Issuer:
    """A JWKS document the test can change; it counts how often keys are resolved."""

    def __init__(self, *keys: SigningKey) -> None:
        self.publish(*keys)

    def publish(self, *keys: SigningKey) -> None:
        self.document = json.dumps(jwks_of(*keys)).encode()

    def __call__(self) -> bytes:
        return self.document


class CountingKeys(JwksKeys):
    """The real JWKS resolver, counting the signatures it is asked a key for."""

    resolved = 0

    def __call__(self, kid: str | None, alg: str, *, may_fetch: bool = True) -> Any:
        self.resolved += 1
        return super().__call__(kid, alg, may_fetch=may_fetch)


def settings(**values: Any) -> Settings:
    return Settings(
        _env_file=None,
        jwt_secret=SECRET,
        jwt_algorithms="HS256,ES256",
        jwt_leeway_seconds=LEEWAY,
        **values,
    )


def cached(
    config: Settings, keys: JwksKeys | None = None, clock: Clock | None = None, **bounds: Any
) -> CachedTokenVerifier:
    verifier = TokenVerifier(config, resolve_key=keys)
    return CachedTokenVerifier(verifier, config, keys, clock=clock or Clock(), **bounds)


def verify(cache: CachedTokenVerifier, token: str) -> str:
    """What the middleware does: on KeyFetchNeeded, fetch, then verify without fetching."""
    try:
        return cache.verify(token)
    except KeyFetchNeeded as needed:
        needed.fetch()
    return cache.verify(token, may_fetch=False)


def hs256(user_id: str, **claims: Any) -> str:
    return jwt.encode(claims_for(user_id, **claims), SECRET, algorithm="HS256")


@pytest.fixture
def es() -> SigningKey:
    return new_key("ES256", kid="es-1")


@pytest.fixture
def keys(es: SigningKey) -> CountingKeys:
    issuer = Issuer(es)
    resolver = CountingKeys(issuer, cache_seconds=3600, min_refetch_seconds=0)
    resolver.issuer = issuer  # type: ignore[attr-defined]
    return resolver


def test_a_tokens_signature_is_verified_once(keys: CountingKeys, es: SigningKey) -> None:
    cache = cached(settings(), keys)
    token = es.sign(claims_for("alice"))
    assert [verify(cache, token) for _ in range(3)] == ["alice"] * 3
    assert keys.resolved == 2  # the first use: once to ask for the fetch, once to verify


def test_a_token_that_expires_after_caching_is_refused() -> None:
    clock = Clock()
    cache = cached(settings(), clock=clock)
    token = hs256("alice", ttl=60)
    assert verify(cache, token) == "alice"
    clock.now += 60 + LEEWAY + 1
    with pytest.raises(InvalidToken, match="the token has expired"):
        verify(cache, token)


def test_a_cached_token_expired_within_the_leeway_is_still_accepted() -> None:
    clock = Clock()
    cache = cached(settings(), clock=clock)
    token = hs256("alice", ttl=60)
    verify(cache, token)
    clock.now += 60 + LEEWAY - 5
    assert verify(cache, token) == "alice"


def test_an_expired_cached_token_is_forgotten() -> None:
    clock = Clock()
    cache = cached(settings(), clock=clock)
    token = hs256("alice", ttl=60)
    verify(cache, token)
    clock.now += 60 + LEEWAY + 1
    with pytest.raises(InvalidToken):
        verify(cache, token)
    assert cache.entries == 0


def test_the_maximum_lifetime_is_checked_on_every_use() -> None:
    clock = Clock()
    cache = cached(settings(jwt_max_lifetime_seconds=600), clock=clock)
    now = int(clock.now)
    token = jwt.encode({"sub": "alice", "exp": now + 500}, SECRET, algorithm="HS256")
    verify(cache, token)
    clock.now -= 200  # the clock stepped back: the same token now lives too long
    with pytest.raises(InvalidToken, match="lifetime is longer than allowed"):
        verify(cache, token)


def test_a_cached_token_is_not_yet_valid_when_the_clock_steps_back_before_nbf() -> None:
    clock = Clock()
    cache = cached(settings(), clock=clock)
    token = hs256("alice", nbf=int(clock.now))
    verify(cache, token)
    clock.now -= LEEWAY + 10
    with pytest.raises(InvalidToken, match="the token is invalid"):
        verify(cache, token)


def test_a_refused_token_is_never_cached() -> None:
    cache = cached(settings())
    forged = jwt.encode(claims_for("alice"), secrets.token_urlsafe(48), algorithm="HS256")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verify(cache, forged)
    assert cache.entries == 0


def test_a_jwks_rotation_empties_the_cache_and_refuses_the_old_keys_tokens(
    keys: CountingKeys, es: SigningKey
) -> None:
    cache = cached(settings(), keys)
    old = es.sign(claims_for("alice"))
    verify(cache, old)
    keys.issuer.publish(new_key("ES256", kid="es-2"))  # type: ignore[attr-defined]
    keys.refresh()
    with pytest.raises(InvalidToken):
        verify(cache, old)
    assert cache.entries == 0


def test_a_jwks_refresh_with_the_same_keys_keeps_the_cache(
    keys: CountingKeys, es: SigningKey
) -> None:
    cache = cached(settings(), keys)
    token = es.sign(claims_for("alice"))
    verify(cache, token)
    keys.refresh()
    resolved = keys.resolved
    assert verify(cache, token) == "alice"
    assert keys.resolved == resolved


def test_a_different_secret_empties_the_cache() -> None:
    config = settings()
    cache = cached(config)
    verify(cache, hs256("alice"))
    rotated = secrets.token_urlsafe(48)
    config.jwt_secret = SecretStr(rotated)
    token = jwt.encode(claims_for("bob"), rotated, algorithm="HS256")
    assert verify(cache, token) == "bob"
    assert cache.entries == 1


def test_after_a_secret_rotation_a_token_signed_with_the_old_secret_is_refused() -> None:
    config = settings()
    cache = cached(config)
    old = hs256("alice")
    verify(cache, old)
    config.jwt_secret = SecretStr(secrets.token_urlsafe(48))
    with pytest.raises(InvalidToken):
        verify(cache, old)


def test_the_cache_holds_at_most_its_entry_bound() -> None:
    cache = cached(settings(), max_entries=5)
    for n in range(20):
        verify(cache, hs256(f"user-{n}"))
    assert cache.entries == 5


def test_the_cache_holds_at_most_its_byte_bound_with_large_tokens() -> None:
    bound = 64 * 1024
    cache = cached(settings(), max_bytes=bound)
    padding = "x" * 7000  # tokens near the 8 KB Authorization limit
    for n in range(40):
        verify(cache, hs256(f"user-{n}", pad=padding))
    assert cache.bytes <= bound
    assert 0 < cache.entries < 40


def test_the_oldest_entries_leave_first() -> None:
    cache = cached(settings(), max_entries=2)
    first, second, third = (hs256(name) for name in ("a", "b", "c"))
    for token in (first, second, third):
        verify(cache, token)
    assert cache.entries == 2
    assert cache.bytes == sum(
        len(t) + 1 + ENTRY_OVERHEAD_BYTES for t in (second, third)
    )


def test_an_entry_is_verified_afresh_after_its_maximum_age(
    keys: CountingKeys, es: SigningKey
) -> None:
    clock = Clock()
    cache = cached(settings(), keys, clock=clock, max_age_seconds=60)
    token = es.sign(claims_for("alice"))
    verify(cache, token)
    resolved = keys.resolved
    clock.now += 61
    assert verify(cache, token) == "alice"
    assert keys.resolved > resolved
