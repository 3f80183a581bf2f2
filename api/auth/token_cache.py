"""A bounded cache of verified tokens: each distinct token's signature is checked once.

A client sends the same bearer token on every request until it expires, and verifying it (header
and payload parsing, the HMAC or public-key signature, the claim rules) is most of what
authentication costs. Only the outcome of the signature and of the claims that cannot change
(algorithm, key, issuer, audience, identity claim) is remembered; the time claims are checked
again on every request, with the same leeway and lifetime rule as TokenVerifier, so a token that
expires while cached is refused exactly as an uncached one would be.

Only successes are kept: a refused token is verified afresh every time, so garbage tokens can
neither fill the cache nor be remembered as anything. The cache is bounded in entries and in
bytes (a token may be up to 8 KB), forgets an entry after `max_age_seconds` (so the JWKS keeps
its refresh cadence), and empties itself whenever the verification keys change: a JWKS refresh
that brings different keys, or a different shared secret.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import jwt

from api.auth.jwks import JwksKeys
from api.auth.tokens import InvalidToken, TokenVerifier
from api.settings import Settings

MAX_ENTRIES = 10_000
MAX_BYTES = 8 * 1024 * 1024
MAX_AGE_SECONDS = 300.0
# What one entry costs besides its token: the entry object, its dict slot, the user id.
ENTRY_OVERHEAD_BYTES = 400


@dataclass(frozen=True, slots=True)
class _Verified:
    user_id: str
    exp: int
    nbf: float | None
    iat: float | None
    cached_at: float
    size: int


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class CachedTokenVerifier:
    """TokenVerifier's `verify`, remembering verified tokens (see the module docstring)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        settings: Settings,
        jwks: JwksKeys | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_age_seconds: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._settings = settings
        self._jwks = jwks
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_age = max_age_seconds
        self._clock = clock
        self._entries: dict[str, _Verified] = {}
        self._bytes = 0
        self._secret: object = None
        self._secret_digest: bytes | None = None
        self._keys = self._key_generation()

    @property
    def entries(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def verify(self, token: str, *, may_fetch: bool = True) -> str:
        """The verified user id, or InvalidToken (KeyFetchNeeded passes through, uncached)."""
        keys = self._key_generation()
        if keys != self._keys:
            self.clear()
            self._keys = keys
        now = self._clock()
        entry = self._entries.get(token)
        if entry is not None and now - entry.cached_at < self._max_age:
            try:
                self._check_times(entry, now)
            except InvalidToken:
                self._forget(token)
                raise
            return entry.user_id
        if entry is not None:
            self._forget(token)
        user_id = self._verifier.verify(token, may_fetch=may_fetch)
        self._remember(token, user_id, now)
        return user_id

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _key_generation(self) -> Hashable:
        secret = self._settings.jwt_secret
        if secret is not self._secret:  # hashed once per secret, not once per request
            self._secret = secret
            self._secret_digest = (
                hashlib.sha256(secret.get_secret_value().encode()).digest() if secret else None
            )
        return (self._secret_digest, self._jwks.generation if self._jwks is not None else None)

    def _check_times(self, entry: _Verified, now: float) -> None:
        """The time rules TokenVerifier applies (PyJWT's, then the maximum lifetime)."""
        leeway = self._settings.jwt_leeway_seconds
        if entry.exp <= now - leeway:
            raise InvalidToken("the token has expired")
        for not_before in (entry.nbf, entry.iat):
            if not_before is not None and not_before > now + leeway:
                raise InvalidToken("the token is invalid")
        if entry.exp - now > self._settings.jwt_max_lifetime_seconds:
            raise InvalidToken("the token's lifetime is longer than allowed")

    def _remember(self, token: str, user_id: str, now: float) -> None:
        # The token was verified a moment ago: its payload is the one the signature covers.
        claims = jwt.decode(token, options={"verify_signature": False})
        size = len(token) + len(user_id) + ENTRY_OVERHEAD_BYTES
        if size > self._max_bytes:
            return
        self._entries[token] = _Verified(
            user_id=user_id,
            exp=int(claims["exp"]),
            nbf=_number(claims, "nbf"),
            iat=_number(claims, "iat"),
            cached_at=now,
            size=size,
        )
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._forget(next(iter(self._entries)))  # the oldest entry first

    def _forget(self, token: str) -> None:
        entry = self._entries.pop(token, None)
        if entry is not None:
            self._bytes -= entry.size
