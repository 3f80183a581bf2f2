"""The access-log middleware: request id in and out, one access line and the request metrics.

`RequestObservation` is the outermost middleware, so it sees every response, including the
401s and 429s produced before routing and the 500 of an unexpected error, which it renders
itself so that even that answer carries the request id. It takes the caller's `X-Request-ID`
when it is short and made of safe characters (anything else could forge or break log lines) or
makes one, echoes it in the response, and makes it part of every log line written while the
request runs. The access line names the route template and the path without its query string,
never a header (api/observability/logs.py masks credentials and escapes control characters).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from re import Pattern

from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth.caller import caller_of
from api.observability import metrics
from api.observability.logs import request_id_var
from api.problems import internal_error

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_LOGGED_PATH = 512
# HTTP allows any token as a method: labelling by it would let clients mint metric series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger("tasks_api.access")
log = logging.getLogger(__name__)


def accepted_request_id(value: bytes | None) -> str:
    """The client's id when it is safe to log and echo; otherwise a fresh one."""
    if value is not None:
        text = value.decode("latin-1")
        if _VALID_REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


Templates = list[tuple[Pattern[str], str]]


def route_templates(routes: Sequence[BaseRoute]) -> Templates:
    """(regex, template) for every route given, so requests refused before routing are
    labelled by the route they aim at. The app factory passes its routers' own routes, whose
    paths already carry the router's prefix."""
    return [
        (compile_path(path)[0], path)
        for path in (getattr(route, "path", None) for route in routes)
        if isinstance(path, str)
    ]


class RequestObservation:
    """Request id in and out, one access log line and the request metrics per request."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._templates: Templates | None = None

    def route_template(self, scope: Scope) -> str:
        """The matched route's template, else the template of the route the path aims at."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if self._templates is None:  # routes are complete once the app serves
            self._templates = route_templates(self.routes)
        for regex, template in self._templates:
            if regex.match(scope["path"]):
                return template
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent = [v for k, v in scope["headers"] if k == REQUEST_ID_HEADER]
        request_id = accepted_request_id(sent[0] if len(sent) == 1 else None)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Rendered here, inside the observed path: the 500 carries the request id and its
            # access line, unlike one rendered by Starlette's outermost error middleware.
            log.exception("unhandled error")
            if started_response:
                raise
            await internal_error()(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = self.route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        metrics.record_request(method, route, status, seconds)
        client = scope.get("client")
        caller = caller_of(scope)
        access_log.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %d %.1fms",
            scope["method"],
            scope["path"][:_MAX_LOGGED_PATH],
            status,
            seconds * 1000,
            extra={
                "fields": {
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"][:_MAX_LOGGED_PATH],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                    "user_id": caller.user_id if caller else None,
                }
            },
        )
