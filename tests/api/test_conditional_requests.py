"""Conditional requests per RFC 9110 (finding 6): If-Match lists, If-None-Match, 304.

Before, only the first If-Match field counted, If-None-Match was ignored, and the list had no
ETag to revalidate with.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]
MISSING = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
WRITES = [
    ("PUT", "", {"json": {"title": "changed"}}),
    ("PATCH", "", {"json": {"title": "changed"}}),
    ("PATCH", "/complete", {}),
    ("DELETE", "", {}),
]
WRITE_IDS = ["put", "patch", "complete", "delete"]


def with_fields(auth: dict[str, str], name: str, *values: str) -> list[tuple[str, str]]:
    """Headers with `name` sent once per value, as separate fields."""
    return [*auth.items(), *((name, value) for value in values)]


@pytest.fixture
def task(client: TestClient, auth: Auth, alice: str) -> tuple[str, str]:
    """(url, ETag) of a fresh task of alice's."""
    created = client.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice))
    return created.headers["Location"], created.headers["ETag"]


def test_several_if_match_fields_form_one_list(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, etag = task
    headers = with_fields(auth(alice), "If-Match", '"stale"', etag)
    response = client.put(url, json={"title": "b"}, headers=headers)
    assert response.status_code == 200, response.text


def test_a_get_naming_the_current_etag_is_304_with_the_etag(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, etag = task
    response = client.get(url, headers={**auth(alice), "If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert response.content == b""


@pytest.mark.parametrize(
    "sent", [lambda tag: "W/" + tag, lambda tag: f'"other", {tag}', lambda tag: "*"],
    ids=["weak-form", "in-a-list", "star"],
)
def test_if_none_match_uses_the_weak_comparison_and_lists(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str],
    sent: Callable[[str], str],
) -> None:
    url, etag = task
    assert client.get(url, headers={**auth(alice), "If-None-Match": sent(etag)}).status_code == 304


def test_several_if_none_match_fields_form_one_list(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, etag = task
    headers = with_fields(auth(alice), "If-None-Match", '"other"', etag)
    assert client.get(url, headers=headers).status_code == 304


def test_a_get_naming_a_stale_etag_is_the_full_200(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, _ = task
    response = client.get(url, headers={**auth(alice), "If-None-Match": '"stale"'})
    assert response.status_code == 200
    assert response.json()["title"] == "x"


def test_a_head_naming_the_current_etag_is_304(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, etag = task
    assert client.head(url, headers={**auth(alice), "If-None-Match": etag}).status_code == 304


def test_the_list_has_an_etag_of_its_bytes_and_revalidates_to_304(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url = f"/api/{alice}/tasks"
    first = client.get(url, headers=auth(alice))
    etag = first.headers["ETag"]
    again = client.get(url, headers={**auth(alice), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    client.post(url, json={"title": "another"}, headers=auth(alice))
    changed = client.get(url, headers={**auth(alice), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert len(changed.json()) == 2


def test_each_page_of_the_list_has_its_own_etag(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    client.post(f"/api/{alice}/tasks", json={"title": "y"}, headers=auth(alice))
    first = client.get(f"/api/{alice}/tasks?limit=1", headers=auth(alice))
    second = client.get(first.headers["Link"][1:].split(">")[0], headers=auth(alice))
    assert first.headers["ETag"] != second.headers["ETag"]


def test_a_page_that_gained_a_next_page_is_not_304(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    """Same tasks on the page, but now a `Link` to more: the client must see the 200."""
    url = f"/api/{alice}/tasks?sort=created&limit=1"
    last_page = client.get(url, headers=auth(alice))
    assert "Link" not in last_page.headers
    client.post(f"/api/{alice}/tasks", json={"title": "later"}, headers=auth(alice))
    grown = client.get(url, headers={**auth(alice), "If-None-Match": last_page.headers["ETag"]})
    assert grown.status_code == 200
    assert grown.content == last_page.content
    assert "Link" in grown.headers
    assert grown.headers["ETag"] != last_page.headers["ETag"]


@pytest.mark.parametrize(("method", "suffix", "kwargs"), WRITES, ids=WRITE_IDS)
def test_a_write_with_if_none_match_star_on_an_existing_task_is_412(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str],
    method: str, suffix: str, kwargs: dict[str, object],
) -> None:
    url, etag = task
    headers = {**auth(alice), "If-None-Match": "*"}
    response = client.request(method, url + suffix, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get(url, headers=auth(alice)).headers["ETag"] == etag  # nothing changed


@pytest.mark.parametrize(("method", "suffix", "kwargs"), WRITES, ids=WRITE_IDS)
def test_a_write_with_if_none_match_naming_the_current_etag_is_412(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str],
    method: str, suffix: str, kwargs: dict[str, object],
) -> None:
    url, etag = task
    headers = {**auth(alice), "If-None-Match": etag}
    response = client.request(method, url + suffix, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 412


def test_a_write_with_if_none_match_naming_a_stale_etag_proceeds(
    client: TestClient, auth: Auth, alice: str, task: tuple[str, str]
) -> None:
    url, _ = task
    headers = {**auth(alice), "If-None-Match": '"stale"'}
    assert client.put(url, json={"title": "b"}, headers=headers).status_code == 200


def test_if_none_match_star_on_a_missing_or_foreign_task_is_404_not_412(
    client: TestClient, auth: Auth, alice: str, bob: str
) -> None:
    """412 would tell that the task exists; another user's task looks missing here too."""
    foreign = client.post(f"/api/{bob}/tasks", json={"title": "b"}, headers=auth(bob)).json()
    for task_id in (MISSING, foreign["id"]):
        response = client.delete(
            f"/api/{alice}/tasks/{task_id}", headers={**auth(alice), "If-None-Match": "*"}
        )
        assert response.status_code == 404
