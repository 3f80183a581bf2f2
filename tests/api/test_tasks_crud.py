"""Create, read, replace, patch, toggle and delete through HTTP, as a REST client sees them."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]


def create(client: TestClient, auth: Auth, user: str, **body: object) -> dict[str, object]:
    response = client.post(
        f"/api/{user}/tasks", json={"title": "Buy milk", **body}, headers=auth(user)
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_create_returns_201_with_location_etag_and_server_fields(
    client: TestClient, auth: Auth, alice: str
) -> None:
    response = client.post(
        f"/api/{alice}/tasks", json={"title": "Buy milk", "description": "2 l"}, headers=auth(alice)
    )
    assert response.status_code == 201
    task = response.json()
    assert response.headers["Location"] == f"/api/{alice}/tasks/{task['id']}"
    assert response.headers["ETag"].startswith('"')
    assert task["user_id"] == alice
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 l"
    assert task["completed"] is False
    assert task["created_at"] == task["updated_at"]


def test_create_trims_the_title(client: TestClient, auth: Auth, alice: str) -> None:
    assert create(client, auth, alice, title="  \tBuy milk \u3000")["title"] == "Buy milk"


def test_create_defaults_description_and_completed(
    client: TestClient, auth: Auth, alice: str
) -> None:
    task = create(client, auth, alice)
    assert task["description"] is None
    assert task["completed"] is False


def test_created_ids_are_uuids_not_counters(client: TestClient, auth: Auth, alice: str) -> None:
    first, second = create(client, auth, alice)["id"], create(client, auth, alice)["id"]
    assert len(str(first)) == 36 and first != second


def test_location_of_a_created_task_serves_it(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.post(f"/api/{alice}/tasks", json={"title": "x"}, headers=auth(alice))
    fetched = client.get(response.headers["Location"], headers=auth(alice))
    assert fetched.status_code == 200
    assert fetched.json() == response.json()
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_get_missing_task_is_404_problem(client: TestClient, auth: Auth, alice: str) -> None:
    response = client.get(
        f"/api/{alice}/tasks/00000000-0000-4000-8000-000000000000", headers=auth(alice)
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_put_replaces_and_resets_omitted_fields(client: TestClient, auth: Auth, alice: str) -> None:
    task = create(client, auth, alice, description="old", completed=True)
    response = client.put(
        f"/api/{alice}/tasks/{task['id']}", json={"title": "New"}, headers=auth(alice)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["description"], body["completed"]) == ("New", None, False)
    assert body["updated_at"] > task["updated_at"]
    assert body["created_at"] == task["created_at"]


def test_patch_changes_only_the_fields_sent(client: TestClient, auth: Auth, alice: str) -> None:
    task = create(client, auth, alice, description="keep")
    response = client.patch(
        f"/api/{alice}/tasks/{task['id']}", json={"completed": True}, headers=auth(alice)
    )
    assert response.status_code == 200
    assert response.json()["completed"] is True
    assert response.json()["description"] == "keep"
    assert response.json()["title"] == task["title"]


def test_patch_accepts_null_description(client: TestClient, auth: Auth, alice: str) -> None:
    task = create(client, auth, alice, description="gone soon")
    response = client.patch(
        f"/api/{alice}/tasks/{task['id']}", json={"description": None}, headers=auth(alice)
    )
    assert response.status_code == 200
    assert response.json()["description"] is None


def test_patch_refuses_null_for_non_nullable_fields(
    client: TestClient, auth: Auth, alice: str
) -> None:
    task = create(client, auth, alice)
    for field in ("title", "completed"):
        response = client.patch(
            f"/api/{alice}/tasks/{task['id']}", json={field: None}, headers=auth(alice)
        )
        assert response.status_code == 422, field


def test_complete_toggles_back_and_forth(client: TestClient, auth: Auth, alice: str) -> None:
    task = create(client, auth, alice)
    url = f"/api/{alice}/tasks/{task['id']}/complete"
    assert client.patch(url, headers=auth(alice)).json()["completed"] is True
    assert client.patch(url, headers=auth(alice)).json()["completed"] is False


def test_delete_is_204_then_404(client: TestClient, auth: Auth, alice: str) -> None:
    task = create(client, auth, alice)
    url = f"/api/{alice}/tasks/{task['id']}"
    first = client.delete(url, headers=auth(alice))
    assert first.status_code == 204
    assert first.content == b""
    assert client.delete(url, headers=auth(alice)).status_code == 404
    assert client.get(url, headers=auth(alice)).status_code == 404


def test_put_with_matching_if_match_succeeds(client: TestClient, auth: Auth, alice: str) -> None:
    created = client.post(f"/api/{alice}/tasks", json={"title": "a"}, headers=auth(alice))
    url = created.headers["Location"]
    response = client.put(
        url, json={"title": "b"}, headers={**auth(alice), "If-Match": created.headers["ETag"]}
    )
    assert response.status_code == 200
    assert response.headers["ETag"] != created.headers["ETag"]


def test_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, auth: Auth, alice: str
) -> None:
    created = client.post(f"/api/{alice}/tasks", json={"title": "a"}, headers=auth(alice))
    url = created.headers["Location"]
    stale = created.headers["ETag"]
    assert client.patch(url, json={"title": "b"}, headers=auth(alice)).status_code == 200
    for method, json in (("PUT", {"title": "c"}), ("PATCH", {"title": "c"}), ("DELETE", None)):
        headers = {**auth(alice), "If-Match": stale}
        response = client.request(method, url, headers=headers, json=json)
        assert response.status_code == 412, method
        assert response.headers["content-type"] == "application/problem+json"
    toggle = client.patch(f"{url}/complete", headers={**auth(alice), "If-Match": stale})
    assert toggle.status_code == 412
    assert client.get(url, headers=auth(alice)).json()["title"] == "b"


def test_if_match_star_matches_any_existing_task(
    client: TestClient, auth: Auth, alice: str
) -> None:
    task = create(client, auth, alice)
    response = client.delete(
        f"/api/{alice}/tasks/{task['id']}", headers={**auth(alice), "If-Match": "*"}
    )
    assert response.status_code == 204


def test_weak_etag_never_satisfies_if_match(client: TestClient, auth: Auth, alice: str) -> None:
    created = client.post(f"/api/{alice}/tasks", json={"title": "a"}, headers=auth(alice))
    weak = "W/" + created.headers["ETag"]
    response = client.delete(created.headers["Location"], headers={**auth(alice), "If-Match": weak})
    assert response.status_code == 412


def test_write_responses_are_committed_before_they_are_sent(
    client: TestClient, auth: Auth, alice: str, owner_conn: object
) -> None:
    import psycopg

    assert isinstance(owner_conn, psycopg.Connection)
    task = create(client, auth, alice, title="durable")
    row = owner_conn.execute("SELECT title FROM task WHERE id = %s", (task["id"],)).fetchone()
    assert row == ("durable",)
