"""WebSocket handshakes: this API serves none, and says so the way it says everything else.

A handshake is an HTTP GET asking to upgrade. It meets the same checks as any request
(authentication, then the tenant check) and is then refused. When the server supports ASGI's
WebSocket denial response extension (uvicorn does), the refusal is the same problem+json an HTTP
client would get; otherwise the handshake is closed, which the server answers with a bare 403.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import TaskNotFound, refuse


class RefuseWebSockets:
    """The innermost layer for handshakes: any that got this far is refused with a 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            problem = TaskNotFound("This API serves no WebSocket endpoints.")
            await refuse(problem, scope, receive, send)
            return
        await self.app(scope, receive, send)
