"""HEAD on every GET route (RFC 9110, section 9.3.2): the GET's status and headers, no body.

FastAPI's routes answer only the methods they declare, so HEAD was a 405 everywhere. Running a
HEAD as the GET it mirrors, with the body dropped on the way out, keeps the two in step by
construction (same handler, same `ETag`, `Content-Length` and `Link`) instead of declaring a
second operation per route.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # A copy: the layers outside (the access log, the metrics) still see the HEAD.
        await self.app({**scope, "method": "GET"}, receive, send_without_body)
