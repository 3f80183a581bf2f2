"""bearer_token: what counts as the token in an `Authorization` header."""

from __future__ import annotations

import pytest

from api.auth.middleware import bearer_token
from api.problems import NotAuthenticated


def scope_with(authorization: bytes) -> dict[str, object]:
    return {"type": "http", "headers": [(b"authorization", authorization)]}


@pytest.mark.parametrize("space", [b" ", b"\t", b" \t  "])
def test_ascii_spaces_and_tabs_around_the_token_are_ignored(space: bytes) -> None:
    assert bearer_token(scope_with(b"Bearer " + space + b"abc.def.ghi" + space)) == "abc.def.ghi"


@pytest.mark.parametrize("space", [b"\xa0", b"\x0b", b"\x0c", b"\x1c"], ids=repr)
def test_other_whitespace_around_the_token_is_refused(space: bytes) -> None:
    """Finding 8: str.strip() removed a no-break space (0xA0) and accepted the token."""
    with pytest.raises(NotAuthenticated):
        bearer_token(scope_with(b"Bearer " + space + b"abc.def.ghi" + space))
