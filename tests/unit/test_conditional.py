"""If-Match evaluation follows RFC 9110's strong comparison."""

from __future__ import annotations

from api.tasks.conditional import etag_for, if_match_allows


def test_etag_is_a_quoted_strong_tag_that_changes_with_the_bytes() -> None:
    tag = etag_for(b'{"a":1}')
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert etag_for(b'{"a":2}') != tag


def test_if_match_accepts_the_current_tag_in_a_list() -> None:
    tag = etag_for(b"x")
    assert if_match_allows(f'"other", {tag}', tag)


def test_if_match_star_accepts_anything() -> None:
    assert if_match_allows("*", etag_for(b"x"))


def test_if_match_refuses_weak_and_unquoted_tags() -> None:
    tag = etag_for(b"x")
    assert not if_match_allows("W/" + tag, tag)
    assert not if_match_allows(tag.strip('"'), tag)
