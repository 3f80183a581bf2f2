"""The JWKS key cache on its own: TTL, bounded refetch, stale keys, 503, parsing, sources.

A fake clock drives time, so the rate limits are checked exactly and without sleeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from jwt.algorithms import RSAAlgorithm

from api.auth.jwks import JwksKeys, parse_jwks
from api.auth.jwks_fetch import JwksError, fetch_for, http_fetch
from api.auth.tokens import InvalidToken, KeyFetchNeeded
from api.problems import ServiceUnavailable
from api.settings import ConfigError, Settings
from tests.support.jwks import SigningKey, jwks_of, jwks_server, new_key

TTL = 300.0
INTERVAL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """A fetch function whose answer and availability the test controls; it counts calls."""

    def __init__(self, *keys: SigningKey) -> None:
        self.document: bytes = json.dumps(jwks_of(*keys)).encode()
        self.up = True
        self.calls = 0

    def publish(self, *keys: SigningKey) -> None:
        self.document = json.dumps(jwks_of(*keys)).encode()

    def __call__(self) -> bytes:
        self.calls += 1
        if not self.up:
            raise JwksError("connection refused")
        return self.document


def resolve(keys: JwksKeys, kid: str | None, alg: str) -> Any:
    """What the middleware does: on KeyFetchNeeded, fetch, then resolve without fetching."""
    try:
        return keys(kid, alg)
    except KeyFetchNeeded as needed:
        needed.fetch()
    return keys(kid, alg, may_fetch=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ed() -> SigningKey:
    return new_key("EdDSA", kid="ed-1")


def cache(issuer: Issuer, clock: Clock) -> JwksKeys:
    return JwksKeys(issuer, cache_seconds=TTL, min_refetch_seconds=INTERVAL, clock=clock)


def test_first_use_asks_for_a_fetch_instead_of_fetching(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    with pytest.raises(KeyFetchNeeded):
        cache(issuer, clock)(ed.kid, "EdDSA")
    assert issuer.calls == 0


def test_cached_keys_are_used_without_fetching_until_the_ttl(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = cache(issuer, clock)
    keys.refresh()
    clock.now += TTL - 1
    for _ in range(100):
        assert keys(ed.kid, "EdDSA") is not None
    assert issuer.calls == 1


def test_expired_cache_asks_for_a_fetch(clock: Clock, ed: SigningKey) -> None:
    keys = cache(Issuer(ed), clock)
    keys.refresh()
    clock.now += TTL
    with pytest.raises(KeyFetchNeeded):
        keys(ed.kid, "EdDSA")


def test_unknown_kid_refetches_at_most_once_per_interval(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = cache(issuer, clock)
    keys.refresh()
    clock.now += INTERVAL  # the window after the first fetch has passed

    for i in range(50):
        with pytest.raises(InvalidToken, match="unknown"):
            resolve(keys, f"forged-{i}", "EdDSA")
        clock.now += INTERVAL / 100

    assert issuer.calls == 2  # the first fetch and exactly one refetch


def test_unknown_kid_refetches_again_after_the_interval(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = cache(issuer, clock)
    keys.refresh()
    clock.now += INTERVAL
    with pytest.raises(InvalidToken):
        resolve(keys, "forged", "EdDSA")
    clock.now += INTERVAL
    rotated = new_key("EdDSA", kid="ed-2")
    issuer.publish(rotated)

    assert resolve(keys, rotated.kid, "EdDSA") is not None
    assert issuer.calls == 3


def test_rotation_replaces_the_key_set(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = cache(issuer, clock)
    keys.refresh()
    rotated = new_key("EdDSA", kid="ed-2")
    issuer.publish(rotated)
    clock.now += INTERVAL

    assert resolve(keys, rotated.kid, "EdDSA") is not None
    with pytest.raises(InvalidToken, match="unknown"):
        resolve(keys, ed.kid, "EdDSA")


def test_failed_refresh_keeps_the_cached_keys(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = cache(issuer, clock)
    keys.refresh()
    issuer.up = False
    clock.now += TTL + 1

    assert resolve(keys, ed.kid, "EdDSA") is not None
    assert issuer.calls == 2


def test_no_cached_keys_and_a_failed_fetch_is_service_unavailable(
    clock: Clock, ed: SigningKey
) -> None:
    issuer = Issuer(ed)
    issuer.up = False
    keys = cache(issuer, clock)
    with pytest.raises(ServiceUnavailable) as raised:
        resolve(keys, ed.kid, "EdDSA")
    assert raised.value.headers["Retry-After"] == str(int(INTERVAL))


def test_issuer_down_is_not_asked_again_within_the_interval(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    issuer.up = False
    keys = cache(issuer, clock)
    for _ in range(20):
        with pytest.raises(ServiceUnavailable):
            resolve(keys, ed.kid, "EdDSA")
        clock.now += INTERVAL / 40
    assert issuer.calls == 1


def test_retry_after_counts_down_to_the_next_allowed_fetch(clock: Clock, ed: SigningKey) -> None:
    issuer = Issuer(ed)
    issuer.up = False
    keys = cache(issuer, clock)
    keys.refresh()
    clock.now += 7.5
    with pytest.raises(ServiceUnavailable) as raised:
        keys(ed.kid, "EdDSA")
    assert raised.value.headers["Retry-After"] == "3"


def test_concurrent_refreshes_fetch_once(ed: SigningKey) -> None:
    issuer = Issuer(ed)
    keys = JwksKeys(issuer, cache_seconds=TTL, min_refetch_seconds=INTERVAL)
    start = threading.Barrier(8)

    def refresh() -> None:
        start.wait()
        keys.refresh()

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert issuer.calls == 1


def test_token_without_kid_uses_the_only_key_of_its_family(clock: Clock, ed: SigningKey) -> None:
    keys = cache(Issuer(ed, new_key("RS256")), clock)
    keys.refresh()
    assert keys(None, "EdDSA") is not None


def test_token_without_kid_is_refused_when_several_keys_could_apply(
    clock: Clock, ed: SigningKey
) -> None:
    keys = cache(Issuer(ed, new_key("EdDSA")), clock)
    keys.refresh()
    with pytest.raises(InvalidToken, match="several"):
        keys(None, "EdDSA")


# -- parsing ----------------------------------------------------------------------------------


def test_parse_keeps_only_public_signature_keys(ed: SigningKey) -> None:
    rsa = new_key("RS256", kid="rsa-1")
    short_rsa = generate_private_key(public_exponent=65537, key_size=1024)
    document = {
        "keys": [
            ed.jwk,
            rsa.jwk,
            {**new_key("ES256").jwk, "use": "enc"},
            {"kty": "oct", "kid": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
            {**ed.jwk, "kid": "with-private-part", "d": "AAAA"},
            {"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad", "kid": "broken"},
            {**json.loads(RSAAlgorithm.to_jwk(short_rsa.public_key())), "kid": "rsa-1024"},
            "not an object",
        ]
    }
    keys = parse_jwks(json.dumps(document).encode())
    assert [k.kid for k in keys] == ["ed-1", "rsa-1"]


@pytest.mark.parametrize("document", [b"<html>", b"[]", b'{"keys": {}}', b"{}"])
def test_parse_refuses_a_document_that_is_not_a_jwks(document: bytes) -> None:
    with pytest.raises(JwksError):
        parse_jwks(document)


# -- sources ----------------------------------------------------------------------------------


def test_file_source_reads_the_set(tmp_path: Path, ed: SigningKey) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_of(ed)))
    assert [k.kid for k in parse_jwks(fetch_for(str(path), 1.0)())] == ["ed-1"]


def test_missing_file_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(JwksError):
        fetch_for(str(tmp_path / "absent.json"), 1.0)()


@pytest.mark.parametrize("url", ["ftp://issuer.example/jwks", "file:///etc/jwks.json"])
def test_other_url_schemes_are_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigError):
        fetch_for(url, 1.0)


def test_oversized_jwks_is_a_fetch_error(ed: SigningKey) -> None:
    with jwks_server(ed) as server:
        server.document = {"keys": [], "padding": "x" * (2 * 1024 * 1024)}
        with pytest.raises(JwksError, match="larger"):
            http_fetch(server.url, 5.0)()


@pytest.fixture
def redirect_to_file() -> Iterator[str]:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    server.server_close()


def test_redirect_to_a_local_file_is_not_followed(redirect_to_file: str) -> None:
    with pytest.raises(JwksError):
        http_fetch(redirect_to_file, 5.0)()


# -- settings ---------------------------------------------------------------------------------


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, database_url="postgresql://db/x", **values)


def test_jwks_without_an_asymmetric_algorithm_refuses_to_start() -> None:
    settings = _settings(jwt_jwks_url="https://issuer.example/jwks", jwt_secret="s" * 40)
    with pytest.raises(ConfigError, match="JWT_ALGORITHMS"):
        settings.require_verification_keys()


def test_jwks_url_with_another_scheme_refuses_to_start() -> None:
    settings = _settings(jwt_jwks_url="ftp://issuer.example/jwks", jwt_algorithms="EdDSA")
    with pytest.raises(ConfigError, match="http"):
        settings.require_verification_keys()


def test_jwks_alone_needs_no_shared_secret() -> None:
    settings = _settings(jwt_jwks_url="https://issuer.example/jwks", jwt_algorithms="EdDSA")
    settings.require_verification_keys()
    assert settings.jwt_secret is None
