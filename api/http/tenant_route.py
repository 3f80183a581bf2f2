"""The route class for tenant routes: checks that run after routing but before the body is parsed.

FastAPI parses a JSON body before it runs any dependency, so the ownership check (403) and the
media-type check (415) live here to keep the error order a client can rely on:
401 bad token, 403 someone else's path, 415 not JSON, 400 malformed JSON, 422 invalid fields.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.auth.caller import caller_of
from api.problems import Forbidden, UnsupportedMediaType


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class TenantRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def checked_handler(request: Request) -> Response:
            caller = caller_of(request.scope)
            if caller is None or request.path_params.get("user_id") != caller.user_id:
                raise Forbidden("The path's user is not the token's user.")
            if takes_body and not is_json_media_type(request.headers.get("content-type")):
                raise UnsupportedMediaType("Send the body as application/json.")
            return await handler(request)

        return checked_handler
