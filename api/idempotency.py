"""`Idempotency-Key` on POST: a retried create gets the first response back, not a second task.

A client that timed out, or was answered 503 while the commit's outcome was unknown, can send
the same request again with the same key. The first successful response (status, body,
`Location`, `ETag`) is recorded in the same transaction as the task it describes, so either both
exist or neither does. The same key with a different body is refused with 422. Keys belong to
one user (row-level security and explicit filters, db/idempotency.py) and expire after
`KEY_LIFETIME` (24 hours).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel
from sqlmodel import Session

from api.conditional import etag_for
from api.errors import IdempotencyKeyReused
from db import idempotency
from db.idempotency import StoredResponse
from db.models import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN
from db.session import Database, RetryTransaction

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="A client-chosen key (1 to 255 visible ASCII characters, e.g. a UUID). "
        "Retrying with the same key and body returns the original response instead of "
        "creating another task; the same key with a different body is 422. Keys are per user "
        "and expire after 24 hours.",
        examples=["5f0c2a4e-9a51-4c1e-9d0b-2f4c8f6b1e7a"],
    ),
]


def fingerprint(body: BaseModel) -> str:
    """The request as validated (defaults applied, title trimmed): equal intent, equal print."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(stored: StoredResponse) -> Response:
    body = stored.body.encode()
    headers = {"ETag": etag_for(body), REPLAYED_HEADER: "true"}
    if stored.location is not None:
        headers["Location"] = stored.location
    return Response(
        body, status_code=stored.status_code, media_type="application/json", headers=headers
    )


def create_once(
    db: Database,
    user_id: str,
    key: str,
    body: BaseModel,
    create: Callable[[Session], Response],
) -> Response:
    """Run `create` at most once per (user, key); replay its recorded response afterwards."""
    request_print = fingerprint(body)

    def attempt(session: Session) -> Response:
        stored = idempotency.find(session, user_id, key)
        if stored is not None:
            if stored.request_fingerprint != request_print:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request body; "
                    "use a new key for a new request.",
                )
            return _replay(stored)
        response = create(session)
        record = StoredResponse(
            request_fingerprint=request_print,
            status_code=response.status_code,
            body=bytes(response.body).decode(),
            location=response.headers.get("location"),
        )
        if not idempotency.remember(session, user_id, key, record):
            # A concurrent request with this key committed first: start over and replay it.
            raise RetryTransaction
        return response

    return db.run(user_id, attempt)
