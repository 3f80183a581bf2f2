"""The authentication middleware: verifies the bearer token before routing.

It runs before the body is parsed and before any database connection is taken, so a request with
a bad token costs a signature check and nothing else.
"""

from __future__ import annotations

import re

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.caller import Caller, authenticate
from api.auth.token_cache import CachedTokenVerifier
from api.auth.tokens import InvalidToken, KeyFetchNeeded, TokenVerifier
from api.paths import API_PREFIX
from api.problems import NotAuthenticated, Problem, refuse

MAX_AUTHORIZATION_BYTES = 8192
# RFC 6750's b64token: what a bearer credential may be made of, byte for byte.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _unauthorized(detail: str, *, token_sent: bool) -> NotAuthenticated:
    challenge = 'Bearer realm="tasks-api"'
    if token_sent:
        challenge += f', error="invalid_token", error_description="{detail}"'
    return NotAuthenticated(detail, headers={"WWW-Authenticate": challenge})


def bearer_token(scope: Scope) -> str:
    """The token from the one `Authorization: Bearer` header; tokens elsewhere are ignored."""
    values: list[bytes] = [v for k, v in scope["headers"] if k == b"authorization"]
    if not values:
        raise _unauthorized("Missing bearer token.", token_sent=False)
    if len(values) > 1:
        raise _unauthorized("More than one Authorization header.", token_sent=True)
    raw = values[0]
    if len(raw) > MAX_AUTHORIZATION_BYTES:
        raise _unauthorized("The Authorization header is too large.", token_sent=True)
    scheme, _, token = raw.decode("latin-1").partition(" ")
    # Only the whitespace HTTP itself allows around a field value (RFC 9110, section 5.6.3):
    # str.strip() would also remove a no-break space (0xA0 in Latin-1) and accept the token.
    token = token.strip(" \t")
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise _unauthorized("Expected 'Authorization: Bearer <token>'.", token_sent=True)
    return token


class BearerAuthentication:
    """Verifies the JWT of every request under /api/ and records the verified `Caller`."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier | CachedTokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A WebSocket handshake is a request too: it authenticates like one before its refusal.
        if scope["type"] not in {"http", "websocket"} or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            user_id = await self._verify(bearer_token(scope))
        except InvalidToken as exc:
            await refuse(_unauthorized(str(exc), token_sent=True), scope, receive, send)
            return
        except Problem as problem:
            await refuse(problem, scope, receive, send)
            return
        authenticate(scope, Caller(user_id))
        await self.app(scope, receive, send)

    async def _verify(self, token: str) -> str:
        try:
            return self.verifier.verify(token)
        except KeyFetchNeeded as needed:
            # A JWKS fetch waits on the network: in a worker thread, never on the event loop.
            await anyio.to_thread.run_sync(needed.fetch)
        return self.verifier.verify(token, may_fetch=False)
