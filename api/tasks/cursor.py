"""Opaque list cursors: where the previous page ended, encoded so that every string accepted by
the published pattern decodes to some position (a fuzzer may send any of them; none is an error).

Layout before base64url: time sorts carry 8 bytes of microseconds since the epoch then the
16-byte id; title sorts carry the 16-byte id then the UTF-8 title.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

from db.tasks import Position, SortOrder

CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,1400}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_MICROS = int((datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) / timedelta(microseconds=1))
_MAX_MICROS = int((datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) / timedelta(microseconds=1))


def encode_cursor(sort: SortOrder, position: Position) -> str:
    if isinstance(position.key, datetime):
        micros = (position.key - _EPOCH) // timedelta(microseconds=1)
        raw = micros.to_bytes(8, "big", signed=True) + position.id.bytes
    else:
        raw = position.id.bytes + position.key.encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _lenient_b64decode(text: str) -> bytes:
    if len(text) % 4 == 1:  # one dangling character carries no whole byte
        text = text[:-1]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_cursor(sort: SortOrder, cursor: str) -> Position:
    raw = _lenient_b64decode(cursor)
    if sort.key == "title":
        id_bytes, rest = raw[:16].ljust(16, b"\0"), raw[16:]
        title = rest.decode("utf-8", errors="replace").replace("\0", "")
        return Position(key=title, id=uuid.UUID(bytes=id_bytes))
    raw = raw.ljust(24, b"\0")
    micros = int.from_bytes(raw[:8], "big", signed=True)
    micros = min(max(micros, _MIN_MICROS), _MAX_MICROS)
    return Position(
        key=_EPOCH + timedelta(microseconds=micros), id=uuid.UUID(bytes=raw[8:24])
    )
