"""The queries behind `Idempotency-Key`. Every one filters by `user_id` itself.

Row-level security already limits each transaction to the caller's keys; these filters are the
second, independent layer, as in db/tasks.py. A key lives for `KEY_LIFETIME` (the table's
`expires_at` default); an expired record is ignored and deleted when its key is used again, and
each keyed create also purges a bounded batch of the caller's other expired keys, so the table
does not grow with every key a client ever sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from db.models import IdempotencyKey

# Keep in step with the `expires_at` default in alembic/versions/0002_idempotency_keys.py.
KEY_LIFETIME = timedelta(hours=24)
# Expired keys removed per keyed create: bounded, so no request pays for a long backlog.
PURGE_BATCH = 100


@dataclass(frozen=True)
class StoredResponse:
    request_fingerprint: str
    status_code: int
    body: str
    location: str | None


def find(session: Session, user_id: str, key: str) -> StoredResponse | None:
    """The live record for `key`, or None; an expired record is deleted on the way."""
    row = session.execute(
        select(
            col(IdempotencyKey.request_fingerprint),
            col(IdempotencyKey.status_code),
            col(IdempotencyKey.response_body),
            col(IdempotencyKey.location),
            (col(IdempotencyKey.expires_at) <= func.now()).label("expired"),
        ).where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key) == key)
    ).one_or_none()
    if row is None:
        return None
    if row.expired:
        session.execute(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.user_id) == user_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.expires_at) <= func.now(),
            )
        )
        return None
    return StoredResponse(row.request_fingerprint, row.status_code, row.response_body, row.location)


def remember(session: Session, user_id: str, key: str, response: StoredResponse) -> bool:
    """Record the response under `key`; False when a concurrent request recorded it first.

    A concurrent insert of the same key waits on the primary key until the other transaction
    ends; if that one committed, this insert does nothing and the caller must start over.
    """
    statement = (
        insert(IdempotencyKey)
        .values(
            user_id=user_id,
            key=key,
            request_fingerprint=response.request_fingerprint,
            status_code=response.status_code,
            response_body=response.body,
            location=response.location,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(col(IdempotencyKey.key))
    )
    return session.execute(statement).first() is not None


def purge_expired(session: Session, user_id: str, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` of the caller's expired keys; how many went.

    Row-level security limits it to the caller's rows, and it filters by `user_id` itself; the
    primary key (user_id, key) keeps the scan to the caller's keys.
    """
    expired = (
        select(col(IdempotencyKey.key))
        .where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.expires_at) <= func.now())
        .limit(batch)
        .scalar_subquery()
    )
    result = session.execute(
        delete(IdempotencyKey)
        .where(col(IdempotencyKey.user_id) == user_id, col(IdempotencyKey.key).in_(expired))
        .returning(col(IdempotencyKey.key))
    )
    return len(result.all())
