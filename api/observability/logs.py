"""Log lines: one formatted handler for every logger, never carrying credentials or forgeries.

Every line written while a request runs carries its request id. The formatters mask anything
shaped like a JWT or a bearer credential, whoever logged it; and the text format escapes control
characters in the message, so a client-supplied path or header value can never start a line of
its own. The JSON encoder escapes C0 controls itself but writes C1 controls (U+0085, a line
break to Python and many viewers) and U+2028/U+2029 (line breaks to JavaScript) as they are;
the JSON format escapes those too (as `\\u2028`), which every JSON reader decodes back.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

_CREDENTIALS = re.compile(
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*|(?i:bearer)\s+[^\s\"',;]+"
)
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
TRACEBACK_INDENT = "    | "


def redact(text: str) -> str:
    return _CREDENTIALS.sub(
        lambda m: "Bearer [redacted]" if m.group().lower().startswith("bearer") else "[jwt]", text
    )


def escape_controls(text: str) -> str:
    """`\n` and friends as visible escapes: one log record stays one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _json_escape_controls(document: str) -> str:
    """The same characters as JSON escapes (`\\u0085`); valid anywhere they can occur in a JSON
    text, which is only inside strings."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


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
        return redact(_json_escape_controls(json.dumps(entry, default=str, ensure_ascii=False)))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return redact(super().format(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        """A traceback keeps its lines, each indented: an exception message holding client
        input (a line break, then a forged record) cannot start a line of its own."""
        lines = super().formatException(ei).splitlines()
        return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in lines)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # The message alone: a traceback appended after it keeps its (indented) line breaks.
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


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
