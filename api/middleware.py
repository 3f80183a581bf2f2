"""ASGI middleware that runs before routing: body size, bearer authentication, cache headers.

Authentication lives here, not in a route dependency, so a request with a bad token is refused
before its body is parsed and before any database connection is taken.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import InvalidToken, KeyFetchNeeded, TokenVerifier
from api.errors import HeadersTooLarge, NotAuthenticated, PayloadTooLarge, Problem, render

MAX_AUTHORIZATION_BYTES = 8192
MAX_HEADER_COUNT = 100
PROTECTED_PREFIX = "/api/"


class HeaderSizeLimit:
    """431 when the request's headers are too many or too large in total (OWASP API4).

    The server has already read them, but nothing downstream (authentication, logging, the
    handlers) gets to process or copy them.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > self.max_bytes:
                problem = HeadersTooLarge(
                    f"Send at most {MAX_HEADER_COUNT} headers and {self.max_bytes} bytes of them."
                )
                await render(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await render(self._too_large())(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes through FastAPI's body parsing untouched.
                    raise HTTPException(413, detail=self._too_large().detail)
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {self.max_bytes} bytes.")


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
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise _unauthorized("Expected 'Authorization: Bearer <token>'.", token_sent=True)
    return token


class BearerAuthentication:
    """Verifies the JWT of every request under /api/ and records the caller's user id."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            user_id = await self._verify(bearer_token(scope))
        except InvalidToken as exc:
            await render(_unauthorized(str(exc), token_sent=True))(scope, receive, send)
            return
        except Problem as problem:
            await render(problem)(scope, receive, send)
            return
        scope.setdefault("state", {})["user_id"] = user_id
        await self.app(scope, receive, send)

    async def _verify(self, token: str) -> str:
        try:
            return self.verifier.verify(token)
        except KeyFetchNeeded as needed:
            # A JWKS fetch waits on the network: in a worker thread, never on the event loop.
            await anyio.to_thread.run_sync(needed.fetch)
        return self.verifier.verify(token, may_fetch=False)


class NoStoreForApi:
    """Authenticated responses are per-user: no shared cache may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
                headers.append((b"vary", b"Authorization"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_no_store)
