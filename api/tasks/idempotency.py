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
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header
from pydantic import BaseModel
from sqlmodel import Session

from api.problems import IdempotencyKeyReused
from db import idempotency
from db.errors import RetryTransaction
from db.idempotency import StoredResponse
from db.models import IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN
from db.unit_of_work import Committed, UnitOfWork

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


@dataclass(frozen=True)
class Created:
    """What a create produced, as recorded: the task's representation and where it lives."""

    body: bytes
    location: str
    replayed: bool = False

    def headers(self) -> dict[str, str]:
        return {REPLAYED_HEADER: "true"} if self.replayed else {}


def create_once(
    db: UnitOfWork,
    user_id: str,
    key: str,
    body: BaseModel,
    create: Callable[[Session], Created],
) -> Committed[Created]:
    """Run `create` at most once per (user, key); return its recorded result afterwards."""
    request_print = fingerprint(body)

    def attempt(session: Session) -> Created:
        idempotency.purge_expired(session, user_id)
        stored = idempotency.find(session, user_id, key)
        if stored is not None:
            if stored.request_fingerprint != request_print:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request body; "
                    "use a new key for a new request.",
                )
            return Created(stored.body.encode(), stored.location or "", replayed=True)
        created = create(session)
        record = StoredResponse(
            request_fingerprint=request_print,
            status_code=201,
            body=created.body.decode(),
            location=created.location,
        )
        if not idempotency.remember(session, user_id, key, record):
            # A concurrent request with this key committed first: start over and replay it.
            raise RetryTransaction
        return created

    return db.write(user_id, attempt)
