"""Request ids, access logs and request metrics: what an operator sees of each request.

`RequestObservation` is the outermost middleware, so it sees every response, including the
401s and 429s produced before routing. It takes the caller's `X-Request-ID` when it is short and
made of safe characters (anything else could forge or break log lines) or makes one, echoes it
in the response, and makes it part of every log line written while the request runs.

Logs never carry credentials: the access line names the route template and the path without its
query string, never a header; and the formatters mask anything shaped like a JWT or a bearer
credential, whoever logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from re import Pattern
from typing import Any, TextIO

from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CREDENTIALS = re.compile(
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*|(?i:bearer)\s+[^\s\"',;]+"
)
_MAX_LOGGED_PATH = 512
# HTTP allows any token as a method: labelling by it would let clients mint metric series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("tasks_api.access")


def accepted_request_id(value: bytes | None) -> str:
    """The client's id when it is safe to log and echo; otherwise a fresh one."""
    if value is not None:
        text = value.decode("latin-1")
        if _VALID_REQUEST_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


def redact(text: str) -> str:
    return _CREDENTIALS.sub(
        lambda m: "Bearer [redacted]" if m.group().lower().startswith("bearer") else "[jwt]", text
    )


Templates = list[tuple[Pattern[str], str]]


def route_templates(routes: Sequence[BaseRoute], prefix: str = "") -> Templates:
    """(regex, template) for every route, looking inside included routers (recent FastAPI
    wraps them), so requests refused before routing are labelled by the route they aim at."""
    found: Templates = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found += route_templates(inner.routes, prefix + getattr(context, "prefix", ""))
            continue
        path = getattr(route, "path", None)
        if isinstance(path, str):
            found.append((compile_path(prefix + path)[0], prefix + path))
    return found


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

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = self.route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        labels = (method, route, str(status))
        metrics.REQUESTS.labels(*labels).inc()
        metrics.LATENCY.labels(*labels).observe(seconds)
        client = scope.get("client")
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
                    "user_id": scope.get("state", {}).get("user_id"),
                }
            },
        )


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy for log pipelines, and no field can break the line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "pid": record.process,
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return redact(super().format(record))


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time, like logging's last-resort handler."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


_handler: logging.Handler | None = None


def configure_logging(level: str, as_json: bool) -> None:
    """Route every log line (ours, uvicorn's, SQLAlchemy's) through one formatted handler.

    Idempotent, since each worker process builds the app (and tests build many). Uvicorn's own
    access log is silenced: it would print query strings; ours is written by RequestObservation.
    """
    global _handler
    root = logging.getLogger()
    if _handler is None:
        _handler = _StderrHandler()
        _handler.addFilter(_RequestIdFilter())
        # The CLI's basicConfig handler would print every line a second time.
        for existing in [h for h in root.handlers if type(h) is logging.StreamHandler]:
            root.removeHandler(existing)
        root.addHandler(_handler)
    _handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
