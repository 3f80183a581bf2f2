"""The issuer's JSON Web Key Set: fetched off the request path, cached, refreshed at a bounded rate.

An asymmetric issuer (Better Auth's JWT plugin, Auth0, Clerk...) publishes its public keys as a
JWKS. Verification must not wait on the network once per request, and a forged `kid` must not turn
the service into a fetch amplifier against the issuer, so:

- keys are cached for `jwt_jwks_cache_seconds`;
- a fetch (the cache expired, or a token names a `kid` the cache lacks) happens at most once per
  `jwt_jwks_min_refetch_seconds`, whatever the number of requests asking for it;
- a failed fetch keeps the keys already cached; with no key cached at all the request gets 503 +
  `Retry-After` (the token may be fine, the issuer is down): never a 500, never an accept;
- a key is used only for its own algorithm family (`kty`/`crv` must fit the token's `alg`), and
  symmetric (`oct`) keys in a published set are ignored: a JWKS is public, so its keys must be too.

Fetching blocks, so it never runs on the event loop: the resolver raises `KeyFetchNeeded` and the
caller (api.auth.middleware.BearerAuthentication) runs the fetch in a worker thread, or at startup.
Where the bytes come from (a URL or a file) is api.auth.jwks_fetch's job.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from api.auth.jwks_fetch import Fetch, JwksError, fetch_for
from api.auth.tokens import InvalidToken, KeyFetchNeeded
from api.problems import ServiceUnavailable
from api.settings import Settings

log = logging.getLogger(__name__)

MIN_RSA_BITS = 2048

# Which key a token's `alg` may be verified with: (kty, allowed crv values or None for "no crv").
_KEY_FAMILY: dict[str, tuple[str, frozenset[str] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


@dataclass(frozen=True)
class PublicKey:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: Any

    def fits(self, alg: str) -> bool:
        kty, curves = _KEY_FAMILY.get(alg, ("", None))
        if self.kty != kty or (self.alg is not None and self.alg != alg):
            return False
        return curves is None or self.crv in curves


def _public_key(jwk: object) -> PublicKey | None:
    """One usable verification key, or None for a key we must not or cannot use."""
    if not isinstance(jwk, dict) or jwk.get("kty") not in {"RSA", "EC", "OKP"}:
        return None
    if jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None  # an encryption key, or a private key published by mistake
    kid, alg, crv = jwk.get("kid"), jwk.get("alg"), jwk.get("crv")
    if not all(v is None or isinstance(v, str) for v in (kid, alg, crv)):
        return None
    try:
        key = jwt.PyJWK(jwk).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return None
    return PublicKey(kid=kid, kty=jwk["kty"], crv=crv, alg=alg, key=key)


def parse_jwks(document: bytes) -> tuple[PublicKey, ...]:
    """The usable public keys of a JWKS document; unusable entries are skipped, not fatal."""
    try:
        data = json.loads(document)
    except ValueError as exc:
        raise JwksError(f"the JWKS is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError('the JWKS has no "keys" array')
    keys = tuple(k for k in map(_public_key, data["keys"]) if k is not None)
    if len(keys) < len(data["keys"]):
        log.warning("JWKS: ignored %d unusable key(s)", len(data["keys"]) - len(keys))
    return keys


@dataclass(frozen=True)
class _Snapshot:
    keys: tuple[PublicKey, ...]
    fetched_at: float


class JwksKeys:
    """A KeyResolver (see api.auth.tokens) backed by a cached JWKS."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        cache_seconds: float,
        min_refetch_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._cache_seconds = cache_seconds
        self._min_refetch_seconds = min_refetch_seconds
        self._clock = clock
        self._snapshot: _Snapshot | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self._document: bytes | None = None
        self._generation = 0

    @property
    def generation(self) -> int:
        """Changes whenever a refresh brings a different key set (api.auth.token_cache)."""
        return self._generation

    def __call__(self, kid: str | None, alg: str, *, may_fetch: bool = True) -> Any:
        now = self._clock()
        snapshot = self._snapshot
        fetch_allowed = may_fetch and self._fetch_due(now)
        if snapshot is None:
            if fetch_allowed:
                raise KeyFetchNeeded(self.refresh)
            raise self._unavailable(now)
        if fetch_allowed and now - snapshot.fetched_at >= self._cache_seconds:
            raise KeyFetchNeeded(self.refresh)
        if kid is None:
            # No kid: acceptable only when exactly one key could have signed this token.
            candidates = [k for k in snapshot.keys if k.fits(alg)]
            if len(candidates) > 1:
                raise InvalidToken("the token names no key (kid) and several could apply")
        else:
            candidates = [k for k in snapshot.keys if k.kid == kid]
        if not candidates:
            if fetch_allowed:
                raise KeyFetchNeeded(self.refresh)  # perhaps the issuer rotated its keys
            raise InvalidToken("the token's signing key (kid) is unknown")
        fitting = [k for k in candidates if k.fits(alg)]
        if not fitting:
            raise InvalidToken("the token's key does not belong to its algorithm")
        return fitting[0].key

    def refresh(self) -> None:
        """Fetch the key set now unless another fetch ran within the minimum interval.

        Blocking: call it from a worker thread or before serving. A failure keeps the keys
        already cached (logged; the issuer being down must not lock out valid tokens).
        """
        with self._lock:
            now = self._clock()
            if not self._fetch_due(now):
                return  # a concurrent request fetched it moments ago
            self._last_attempt = now
            try:
                document = self._fetch()
                keys = parse_jwks(document)
            except JwksError as exc:
                log.warning("JWKS refresh failed (keeping %s): %s", self._kept(), exc)
                return
            if document != self._document:
                self._document = document
                self._generation += 1
            self._snapshot = _Snapshot(keys=keys, fetched_at=self._clock())
            log.info("JWKS refreshed: %d key(s), kids %s", len(keys), [k.kid for k in keys])

    def _fetch_due(self, now: float) -> bool:
        last = self._last_attempt
        return last is None or now - last >= self._min_refetch_seconds

    def _kept(self) -> str:
        snapshot = self._snapshot
        return "no cached keys" if snapshot is None else f"{len(snapshot.keys)} cached key(s)"

    def _unavailable(self, now: float) -> ServiceUnavailable:
        last = self._last_attempt if self._last_attempt is not None else now
        wait = max(1, math.ceil(self._min_refetch_seconds - (now - last)))
        return ServiceUnavailable(
            "The token issuer's signing keys cannot be fetched right now; retry shortly.",
            headers={"Retry-After": str(wait)},
        )


def jwks_keys(settings: Settings) -> JwksKeys | None:
    """The resolver JWT_JWKS_URL configures, or None when only the shared secret is used."""
    if not settings.jwt_jwks_url:
        return None
    return JwksKeys(
        fetch_for(settings.jwt_jwks_url, settings.jwt_jwks_timeout_seconds),
        cache_seconds=settings.jwt_jwks_cache_seconds,
        min_refetch_seconds=settings.jwt_jwks_min_refetch_seconds,
    )
