"""The tenant check, and the route class for tenant routes.

The error order a client can rely on: 401 bad token, 403 someone else's path, 413 body too
large, 415 not JSON, 400 malformed JSON, 422 invalid fields. `TenantPath` answers 403 for every
path under /api/ whose first segment is not the caller's id, before routing, so a path that
matches no route (a trailing slash, a typo) cannot tell another user's space from a missing one.
`TenantRoute` repeats the check against the matched route's `user_id` and adds the media-type
check (415), after routing but before FastAPI parses the body (which it does before running any
dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.caller import caller_of
from api.paths import API_PREFIX
from api.problems import Forbidden, UnsupportedMediaType, refuse

FORBIDDEN_DETAIL = "The path's user is not the token's user."


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class TenantPath:
    """403 for a path under /api/ that names another user (authentication ran before)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] in {"http", "websocket"} and path.startswith(API_PREFIX):
            caller = caller_of(scope)
            # The decoded path, as routing reads it: the segment a route's {user_id} would match.
            named = path[len(API_PREFIX) :].partition("/")[0]
            if caller is None or named != caller.user_id:
                await refuse(Forbidden(FORBIDDEN_DETAIL), scope, receive, send)
                return
        await self.app(scope, receive, send)


class TenantRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def checked_handler(request: Request) -> Response:
            caller = caller_of(request.scope)
            if caller is None or request.path_params.get("user_id") != caller.user_id:
                raise Forbidden(FORBIDDEN_DETAIL)
            if takes_body and not is_json_media_type(request.headers.get("content-type")):
                raise UnsupportedMediaType("Send the body as application/json.")
            return await handler(request)

        return checked_handler
