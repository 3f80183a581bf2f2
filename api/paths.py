"""The URL space: where the tenant API lives and how its paths are written.

Authentication, the no-store header, the per-user limit and the OpenAPI document's cross-cutting
headers apply to exactly the paths under `API_PREFIX`.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

API_PREFIX = "/api/"
TENANT_PREFIX = API_PREFIX + "{user_id}"


def tenant_path(user_id: str) -> str:
    """`/api/<user_id>` with the id percent-encoded as one path segment (UTF-8, RFC 3986): safe
    in a header whatever characters the id holds. The ids `.` and `..` have their dots encoded
    too: left bare, a client resolving the link would remove them as dot-segments."""
    segment = quote(user_id, safe="")
    if segment in {".", ".."}:
        segment = segment.replace(".", "%2E")
    return f"{API_PREFIX}{segment}"


def task_path(user_id: str, task_id: uuid.UUID) -> str:
    return f"{tenant_path(user_id)}/tasks/{task_id}"
