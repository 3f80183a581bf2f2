"""Cursors round-trip exactly, and every string the published pattern admits decodes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.tasks.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor
from db.tasks import Position, SortOrder


@pytest.mark.parametrize("sort", [SortOrder.created_asc, SortOrder.updated_desc])
def test_time_positions_round_trip_to_the_microsecond(sort: SortOrder) -> None:
    position = Position(key=datetime(2026, 11, 27, 5, 1, 2, 345678, tzinfo=UTC), id=uuid.uuid4())
    assert decode_cursor(sort, encode_cursor(sort, position)) == position


@given(title=st.text(min_size=1, max_size=255).filter(lambda t: "\x00" not in t))
def test_title_positions_round_trip(title: str) -> None:
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        return
    position = Position(key=title, id=uuid.uuid4())
    cursor = encode_cursor(SortOrder.title_asc, position)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(SortOrder.title_asc, cursor) == position


@given(cursor=st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_pattern_admitted_cursor_decodes_for_every_sort(cursor: str) -> None:
    for sort in SortOrder:
        position = decode_cursor(sort, cursor)
        assert isinstance(position.id, uuid.UUID)
        if isinstance(position.key, str):
            assert "\x00" not in position.key
            position.key.encode("utf-8")
        else:
            assert position.key.tzinfo is not None
