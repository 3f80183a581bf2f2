"""Size limits on what a client sends: too many or too large headers (431), bodies (413)."""

from __future__ import annotations

import re

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import HeadersTooLarge, PayloadTooLarge, refuse, render

MAX_HEADER_COUNT = 100
# ASCII digits only: str.isdigit() also admits '²', which int() refuses.
_DIGITS = re.compile(r"[0-9]+")


class HeaderSizeLimit:
    """431 when the request's headers are too many or too large in total (OWASP API4).

    The server has already read them, but nothing downstream (authentication, logging, the
    handlers) gets to process or copy them.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A WebSocket handshake carries headers like any request, and is refused alike.
        if scope["type"] in ("http", "websocket"):
            headers = scope["headers"]
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > self.max_bytes:
                problem = HeadersTooLarge(
                    f"Send at most {MAX_HEADER_COUNT} headers and {self.max_bytes} bytes of them."
                )
                await refuse(problem, scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed.

    It sits after authentication and the tenant check (api/app.py): a declared length over the
    limit is refused without reading a body byte, but only once the caller may send one here,
    so the answer to a stranger is 401 and to another user's path 403, whatever the length.
    No byte read also means no `100 Continue` sent to a client that asked with `Expect`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and _DIGITS.fullmatch(declared) and int(declared) > self.max_bytes:
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
