"""Authenticated responses are per-user: no shared cache may keep them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.paths import API_PREFIX


class NoStoreForApi:
    """Authenticated responses are per-user: no shared cache may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
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
