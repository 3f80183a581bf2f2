"""The task's public shapes: what clients send (create, replace, patch) and what they receive.

The JSON Schema generated from these models is the OpenAPI contract, so every rule is expressed
in the schema itself (lengths, patterns, no unknown fields, strict types): whatever the schema
admits, the server accepts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.http.openapi import omit_default
from db.identity import USER_ID_RULES
from db.models import DESCRIPTION_MAX, TITLE_MAX

# ECMAScript's \s set, spelled out so the JSON Schema pattern (ECMA-262), pydantic's validator and
# the trimming below agree exactly on what counts as whitespace.
WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS_CLASS = r"\t\n\u000b\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# PostgreSQL text cannot hold NUL; a title must contain something besides whitespace.
TITLE_PATTERN = rf"^[^\u0000]*[^\u0000{_WS_CLASS}][^\u0000]*$"
DESCRIPTION_PATTERN = r"^[^\u0000]*$"
PAGE_MAX = 200


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no unpaired surrogates)") from None
    return value


def _trimmed(value: str) -> str:
    return _encodable(value).strip(WHITESPACE)


Title = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TITLE_MAX,
        pattern=TITLE_PATTERN,
        description="1 to 255 characters as sent; surrounding whitespace is trimmed.",
        examples=["Buy milk"],
    ),
    AfterValidator(_trimmed),
]
Description = Annotated[
    str,
    Field(
        max_length=DESCRIPTION_MAX,
        pattern=DESCRIPTION_PATTERN,
        description="Free text, up to 10,000 characters.",
        examples=["Two litres"],
    ),
    AfterValidator(_encodable),
]

_INPUT = ConfigDict(extra="forbid", strict=True)


class TaskCreate(BaseModel):
    """Body of POST: `title` is required; the rest take their defaults when omitted."""

    model_config = ConfigDict(
        **_INPUT,
        json_schema_extra={"examples": [{"title": "Buy milk", "description": "Two litres"}]},
    )

    title: Title
    description: Description | None = Field(
        default=None, description="Free text, up to 10,000 characters; null or omitted: none."
    )
    completed: bool = Field(
        default=False,
        description="Whether the task is done; false when omitted.",
        json_schema_extra=omit_default,
    )


class TaskReplace(TaskCreate):
    """Body of PUT: a full replacement; omitted optional fields reset to their defaults."""


class TaskPatch(BaseModel):
    """Body of PATCH: only the fields sent change. `null` is allowed for `description` only."""

    model_config = ConfigDict(
        **_INPUT, json_schema_extra={"examples": [{"completed": True}]}
    )

    # Omitted means unchanged, and `null` is refused: no default belongs in the schema.
    title: Title = Field(default=None, json_schema_extra=omit_default)  # type: ignore[assignment]
    description: Description | None = None
    completed: bool = Field(default=None, json_schema_extra=omit_default)  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


# RFC 3339 with microseconds and an offset is at most 32 characters.
Timestamp = Annotated[datetime, Field(json_schema_extra={"maxLength": 32})]


class TaskPublic(BaseModel):
    """A task as the API returns it; the bounds are the table's CHECK constraints."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "user_id": "user_123",
                    "title": "Buy milk",
                    "description": "Two litres",
                    "completed": False,
                    "created_at": "2026-01-02T03:04:05.123456Z",
                    "updated_at": "2026-01-02T03:04:05.123456Z",
                }
            ]
        },
    )

    id: uuid.UUID = Field(json_schema_extra={"maxLength": 36})
    user_id: str = Field(**USER_ID_RULES)
    title: str = Field(min_length=1, max_length=TITLE_MAX, pattern=TITLE_PATTERN)
    description: str | None = Field(max_length=DESCRIPTION_MAX, pattern=DESCRIPTION_PATTERN)
    completed: bool
    created_at: Timestamp
    updated_at: Timestamp


TaskPage = Annotated[list[TaskPublic], Field(max_length=PAGE_MAX)]
