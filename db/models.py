"""The tables (`task`, `idempotency_key`) as SQLModel sees them; `alembic/versions` holds
their source of truth.

A test compares this model with the migrated schema, so the two cannot drift apart silently.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

from db.identity import USER_ID_MAX

TITLE_MAX = 255
DESCRIPTION_MAX = 10_000


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(
            f"char_length(user_id) BETWEEN 1 AND {USER_ID_MAX}", name="task_user_id_length"
        ),
        CheckConstraint(
            f"char_length(title) BETWEEN 1 AND {TITLE_MAX} AND title = btrim(title)",
            name="task_title_trimmed_length",
        ),
        CheckConstraint(
            f"char_length(description) <= {DESCRIPTION_MAX}", name="task_description_length"
        ),
        Index("task_user_created_idx", "user_id", text("created_at DESC"), "id"),
    )

    id: uuid.UUID = Field(
        sa_column=Column(
            UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
        )
    )
    user_id: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(sa_column=Column(String(TITLE_MAX), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=text("false")),
    )
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )


IDEMPOTENCY_KEY_MAX = 255
# Visible ASCII (0x21-0x7E): what survives any HTTP stack unchanged (no spaces to trim).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"


class IdempotencyKey(SQLModel, table=True):
    """The recorded outcome of one POST, so a retry with the same key gets the same answer."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        CheckConstraint(
            f"char_length(user_id) BETWEEN 1 AND {USER_ID_MAX}",
            name="idempotency_key_user_id_length",
        ),
        CheckConstraint(
            f"key ~ '{IDEMPOTENCY_KEY_PATTERN}'", name="idempotency_key_key_visible_ascii"
        ),
        CheckConstraint(
            "request_fingerprint ~ '^[0-9a-f]{64}$'", name="idempotency_key_fingerprint_sha256"
        ),
        CheckConstraint("status_code BETWEEN 200 AND 299", name="idempotency_key_status_success"),
        Index("idempotency_key_user_expires_idx", "user_id", "expires_at"),
    )

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(String(IDEMPOTENCY_KEY_MAX), primary_key=True))
    request_fingerprint: str = Field(sa_column=Column(Text, nullable=False))
    status_code: int = Field(sa_column=Column(SmallInteger, nullable=False))
    response_body: str = Field(sa_column=Column(Text, nullable=False))
    location: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    )
    expires_at: datetime = Field(
        sa_column=Column(
            DateTime(timezone=True),
            nullable=False,
            server_default=text("now() + '24:00:00'::interval"),
        )
    )
