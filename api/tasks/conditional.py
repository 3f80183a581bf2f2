"""Entity tags and If-Match: optimistic concurrency for writes (RFC 9110, section 13.1.1)."""

from __future__ import annotations

import hashlib


def etag_for(representation: bytes) -> str:
    """A strong tag derived from the exact bytes the client receives for the task."""
    return '"' + hashlib.sha256(representation).hexdigest()[:32] + '"'


def if_match_allows(header: str, current_etag: str) -> bool:
    """If-Match uses the strong comparison: a weak tag (W/"...") never matches."""
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or current_etag in candidates
