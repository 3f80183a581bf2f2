"""Entity tags and conditional requests (RFC 9110, section 13).

`If-Match` makes a write conditional on the state the client saw (strong comparison);
`If-None-Match` makes a read answer 304 when the client's copy is current, and makes a write
fail (412) when the task exists in a state the client names, or at all for `*` (weak
comparison). A field may be sent several times; its values form one list (RFC 9110, section
5.3), so every value counts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import Header, Request

# One list member: `*`, or an entity tag, weak (`W/"..."`) or strong. Anything else in the
# field is not a tag and can match nothing.
_LIST_MEMBER = re.compile(r'\*|(?:W/)?"[^"]*"')
Fields = str | Sequence[str]


def etag_for(representation: bytes) -> str:
    """A strong tag derived from the exact bytes the client receives (a task, or a page)."""
    return '"' + hashlib.sha256(representation).hexdigest()[:32] + '"'


def entity_tags(fields: Fields) -> list[str]:
    """The list members of one or more field values, in order."""
    values = [fields] if isinstance(fields, str) else fields
    return [member for value in values for member in _LIST_MEMBER.findall(value)]


def if_match_allows(fields: Fields, current_etag: str) -> bool:
    """If-Match uses the strong comparison: a weak tag (W/"...") never matches."""
    tags = entity_tags(fields)
    return "*" in tags or current_etag in tags


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def if_none_match_matches(fields: Fields, current_etag: str) -> bool:
    """If-None-Match uses the weak comparison: `W/"x"` and `"x"` are the same tag."""
    tags = entity_tags(fields)
    return "*" in tags or _opaque(current_etag) in {_opaque(tag) for tag in tags}


# As request dependencies: FastAPI would read only a field's first value; these read them all.
# The declared parameter is what the OpenAPI document publishes.


async def if_match_fields(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=1024,
            description="Apply the change only if the task's current ETag is listed (or `*`).",
        ),
    ] = None,
) -> list[str] | None:
    return None if if_match is None else request.headers.getlist("if-match")


IfNoneMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=1024,
        description="On a read: 304 when the current ETag is listed (or `*`). On a write: "
        "412 when the task exists and its ETag is listed (or `*`).",
    ),
]


async def if_none_match_fields(
    request: Request, if_none_match: IfNoneMatchHeader = None
) -> list[str] | None:
    return None if if_none_match is None else request.headers.getlist("if-none-match")
