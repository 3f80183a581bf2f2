"""Entity tags: If-Match uses RFC 9110's strong comparison, If-None-Match the weak one."""

from __future__ import annotations

from api.tasks.conditional import (
    entity_tags,
    etag_for,
    if_match_allows,
    if_none_match_matches,
)


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


def test_several_if_match_fields_form_one_list() -> None:
    tag = etag_for(b"x")
    assert if_match_allows(['"other"', f'"more", {tag}'], tag)
    assert not if_match_allows(['"other"', '"more"'], tag)


def test_if_none_match_uses_the_weak_comparison() -> None:
    tag = etag_for(b"x")
    assert if_none_match_matches(tag, tag)
    assert if_none_match_matches("W/" + tag, tag)
    assert if_none_match_matches(['"other"', "W/" + tag], tag)
    assert not if_none_match_matches('"other", W/"other"', tag)


def test_if_none_match_star_matches_any_current_representation() -> None:
    assert if_none_match_matches("*", etag_for(b"x"))


def test_a_tag_list_ignores_what_is_not_a_tag() -> None:
    tag = etag_for(b"x")
    assert entity_tags(f'garbage, {tag} ,, W/"w"') == [tag, 'W/"w"']
    assert not if_none_match_matches(tag.strip('"'), tag)
