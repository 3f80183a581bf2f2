"""JWT verification: who is calling. Nothing here touches the database.

A token is accepted only when its algorithm is on the allow-list, its signature verifies with the
key for that algorithm family (the shared secret for HS*, the issuer's JWKS for the rest), its
time claims hold within the leeway, and its identity claim is a usable user id.

Before PyJWT sees a token, `parse_compact` reads its header and claims strictly: one encoding of
each segment (unpadded base64url), UTF-8 JSON objects without a byte-order mark, without
duplicate member names and without non-finite numbers. Where two JSON parsers could disagree on
what a token says (`{"sub": "alice", "sub": "bob"}`: the first or the last?), the token is
refused instead of trusting that they agree.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from api.settings import HMAC_ALGORITHMS, Settings
from db.identity import CONTROL_CHARACTER, USER_ID_MAX


class InvalidToken(Exception):
    """The bearer token cannot be trusted; the message is safe to show to the client."""


class KeyFetchNeeded(Exception):
    """The key may appear after a blocking fetch: run `fetch` off the event loop, verify again.

    Verification itself stays synchronous and never touches the network; the caller decides
    where the blocking part runs (api.auth.middleware runs it in a worker thread).
    """

    def __init__(self, fetch: Callable[[], None]) -> None:
        super().__init__("the issuer's keys must be fetched")
        self.fetch = fetch


class KeyResolver(Protocol):
    """Resolves (kid, alg) to a verification key for asymmetric algorithms (see api.auth.jwks).

    Raises InvalidToken for an unknown or unsuitable key, KeyFetchNeeded (only when `may_fetch`)
    when fetching could help, or a Problem (503) when the keys are unavailable.
    """

    def __call__(self, kid: str | None, alg: str, *, may_fetch: bool = True) -> Any: ...


# Unpadded base64url (RFC 7515, section 2): one spelling per byte string, nothing to strip.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class CompactToken:
    """A JWS in compact form, its header and claims read strictly, its signature unchecked."""

    header: dict[str, Any]
    claims: dict[str, Any]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise InvalidToken("the token repeats a member name")
    return members


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidToken("the token holds a number out of range")
    return value


def _no_constant(name: str) -> Any:
    raise InvalidToken(f"the token holds {name}, which is not JSON")


def _json_object(segment: str) -> dict[str, Any]:
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise InvalidToken("the token is malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        # Strict UTF-8 keeps a byte-order mark in the text, where the JSON parser refuses it
        # (json.loads on bytes would silently drop it, or read UTF-16).
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_float=_finite,
            parse_constant=_no_constant,
        )
    except (binascii.Error, ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad JSON and integers past the parser's digit limit;
        # RecursionError, arrays or objects nested deeper than the parser goes.
        raise InvalidToken("the token is malformed") from None
    if not isinstance(value, dict):
        raise InvalidToken("the token is malformed")
    return value


def parse_compact(token: str) -> CompactToken:
    """The token's header and claims, or InvalidToken; nothing here checks the signature."""
    parts = token.split(".")
    if len(parts) != 3 or not _SEGMENT.fullmatch(parts[2]):
        raise InvalidToken("the token is malformed")
    return CompactToken(header=_json_object(parts[0]), claims=_json_object(parts[1]))


def _valid_user_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidToken("the identity claim must be a non-empty string")
    if len(value) > USER_ID_MAX:
        raise InvalidToken("the identity claim is too long")
    if CONTROL_CHARACTER.search(value):
        raise InvalidToken("the identity claim contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidToken("the identity claim is not valid Unicode") from None
    return value


class TokenVerifier:
    def __init__(self, settings: Settings, resolve_key: KeyResolver | None = None) -> None:
        # The secret is read from the settings at each verification, never copied: whoever
        # replaces it (and the token cache, which watches it) agree on the key in force.
        self._settings = settings
        self._resolve_key = resolve_key

    def verify(self, token: str, *, may_fetch: bool = True) -> str:
        """Return the verified user id, or raise InvalidToken (or KeyFetchNeeded, see above)."""
        s = self._settings
        header = parse_compact(token).header
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in s.jwt_algorithms:
            raise InvalidToken("the token's algorithm is not allowed")
        key = self._key_for(alg, header.get("kid"), may_fetch)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={
                    "require": ["exp", s.jwt_user_claim],
                    "verify_aud": s.jwt_audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            # Checked after the signature: only a genuine token learns that it merely expired.
            raise InvalidToken("the token has expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token is invalid") from None
        self._check_lifetime(claims)
        return _valid_user_id(claims.get(s.jwt_user_claim))

    def _key_for(self, alg: str, kid: object, may_fetch: bool) -> Any:
        # The header's alg picks the key source, and only among the configured ones: an HS*
        # token is checked against the shared secret, never against a published public key.
        if alg in HMAC_ALGORITHMS:
            if self._settings.jwt_secret is None:
                raise InvalidToken("the token's algorithm is not allowed")
            return self._settings.jwt_secret.get_secret_value()
        if self._resolve_key is None:
            raise InvalidToken("the token's algorithm is not allowed")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token's kid must be a string")
        return self._resolve_key(kid, alg, may_fetch=may_fetch)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        # PyJWT accepts any number (and a numeric string for iat and nbf); a NumericDate we
        # trust is a whole number of seconds.
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if (name == "exp" or value is not None) and (
                not isinstance(value, int) or isinstance(value, bool)
            ):
                raise InvalidToken(f"the token's {name} claim must be an integer")
        exp = claims["exp"]
        # In integers: `exp - time.time()` is float arithmetic, which overflows on a
        # 309-digit exp where an integer comparison simply says "too long".
        if exp - int(time.time()) > self._settings.jwt_max_lifetime_seconds:
            raise InvalidToken("the token's lifetime is longer than allowed")


def mint_token(secret: str, user_id: str, *, ttl_seconds: int = 3600, **claims: Any) -> str:
    """A development token signed with the shared secret (what `tasks-api token` prints)."""
    now = int(time.time())
    payload = {"sub": user_id, "iat": now, "exp": now + ttl_seconds, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")
