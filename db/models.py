"""The `task` table as SQLModel sees it; `alembic/versions` holds its source of truth.

A test compares this model with the migrated schema, so the two cannot drift apart silently.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Column, DateTime, Index, String, Text, text
from sqlalchemy.dialects.postgresql import UUID
from sqlmodel import Field, SQLModel

TITLE_MAX = 255
DESCRIPTION_MAX = 10_000
USER_ID_MAX = 255


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
