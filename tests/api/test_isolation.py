"""Two users through HTTP, every route: neither can read, change or even detect the other's tasks.

The suite is a class so that tests/api/test_filters_alone.py can run it unchanged against a
database with row-level security removed (the handlers' `user_id` filters alone), and the
protection-removal runner (tests/mutation/) can run it with a layer taken away.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import make_settings

Auth = Callable[[str], dict[str, str]]

# Each route that addresses one task: (method, path suffix, JSON body or None).
ONE_TASK_ROUTES = [
    ("GET", "", None),
    ("PUT", "", {"title": "taken over", "completed": True}),
    ("PATCH", "", {"title": "taken over"}),
    ("PATCH", "/complete", None),
    ("DELETE", "", None),
]
ROUTE_IDS = ["get", "put", "patch", "complete", "delete"]


@dataclass
class Tenants:
    """Tasks created through the API: alice has three (one completed), bob two."""

    alice: str
    bob: str
    tasks: dict[str, dict[str, dict[str, Any]]]

    def ids(self, user: str) -> set[str]:
        return set(self.tasks[user])

    def one_of(self, user: str) -> dict[str, Any]:
        return next(iter(self.tasks[user].values()))


def listed_ids(client: TestClient, auth: Auth, user: str, **params: str | int) -> list[str]:
    """Every task id the list route returns for `user`, following `Link: rel="next"`."""
    ids: list[str] = []
    url: str | None = f"/api/{user}/tasks"
    query: dict[str, str | int] | None = params
    while url is not None:
        response = client.get(url, params=query, headers=auth(user))
        assert response.status_code == 200, response.text
        ids += [task["id"] for task in response.json()]
        link = response.headers.get("Link")
        url = link[link.index("<") + 1 : link.index(">")] if link else None
        query = None
    return ids


def call(
    client: TestClient,
    auth: Auth,
    method: str,
    path: str,
    body: object,
    caller: str,
    **headers: str,
) -> Any:
    return client.request(method, path, json=body, headers={**auth(caller), **headers})


class TestTwoUsersStayApart:
    @pytest.fixture(scope="class")
    @classmethod
    def client(cls, database_url: str, jwt_secret: str) -> Iterator[TestClient]:
        """One app for the class (users differ per test): keeps the suite, and each protection
        removal pass over it, quick."""
        settings = make_settings(database_url, jwt_secret)
        with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
            yield test_client

    @pytest.fixture
    def tenants(self, client: TestClient, auth: Auth, alice: str, bob: str) -> Tenants:
        tasks: dict[str, dict[str, dict[str, Any]]] = {alice: {}, bob: {}}
        for user, titles in ((alice, ["a1", "a2", "a3"]), (bob, ["b1", "b2"])):
            for title in titles:
                response = client.post(
                    f"/api/{user}/tasks",
                    json={"title": f"{user} {title}", "completed": title == "a3"},
                    headers=auth(user),
                )
                assert response.status_code == 201, response.text
                tasks[user][response.json()["id"]] = response.json()
        return Tenants(alice, bob, tasks)

    def test_each_user_lists_exactly_their_own_tasks(
        self, client: TestClient, auth: Auth, tenants: Tenants
    ) -> None:
        for user in (tenants.alice, tenants.bob):
            listed = listed_ids(client, auth, user)
            assert sorted(listed) == sorted(tenants.ids(user))

    def test_no_filter_or_order_reaches_another_users_tasks(
        self, client: TestClient, auth: Auth, tenants: Tenants
    ) -> None:
        for status in ("all", "pending", "completed"):
            for sort in ("created", "-created", "title", "-title", "updated", "-updated"):
                for user, other in ((tenants.alice, tenants.bob), (tenants.bob, tenants.alice)):
                    listed = set(listed_ids(client, auth, user, status=status, sort=sort))
                    assert listed <= tenants.ids(user), (status, sort)
                    assert not listed & tenants.ids(other), (status, sort)

    def test_paging_one_by_one_never_reaches_another_users_tasks(
        self, client: TestClient, auth: Auth, tenants: Tenants
    ) -> None:
        listed = listed_ids(client, auth, tenants.bob, limit=1)
        assert sorted(listed) == sorted(tenants.ids(tenants.bob))

    @pytest.mark.parametrize(("method", "suffix", "body"), ONE_TASK_ROUTES, ids=ROUTE_IDS)
    def test_another_users_task_is_the_same_404_as_a_missing_one(
        self,
        client: TestClient,
        auth: Auth,
        tenants: Tenants,
        method: str,
        suffix: str,
        body: object,
    ) -> None:
        bob = tenants.bob
        foreign = tenants.one_of(tenants.alice)["id"]
        theirs = call(client, auth, method, f"/api/{bob}/tasks/{foreign}{suffix}", body, bob)
        missing = call(client, auth, method, f"/api/{bob}/tasks/{uuid.uuid4()}{suffix}", body, bob)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.content == missing.content
        assert theirs.headers["content-type"] == missing.headers["content-type"]
        assert "ETag" not in theirs.headers

    @pytest.mark.parametrize(("method", "suffix", "body"), ONE_TASK_ROUTES[1:], ids=ROUTE_IDS[1:])
    def test_a_conditional_write_on_another_users_task_is_404_not_412(
        self,
        client: TestClient,
        auth: Auth,
        tenants: Tenants,
        method: str,
        suffix: str,
        body: object,
    ) -> None:
        """412 would confirm the task exists; `If-Match: *` must not turn into an oracle."""
        bob = tenants.bob
        foreign = tenants.one_of(tenants.alice)["id"]
        for if_match in ("*", '"not-the-etag"'):
            response = call(
                client,
                auth,
                method,
                f"/api/{bob}/tasks/{foreign}{suffix}",
                body,
                bob,
                **{"If-Match": if_match},
            )
            assert response.status_code == 404, response.text

    @pytest.mark.parametrize(("method", "suffix", "body"), ONE_TASK_ROUTES[1:], ids=ROUTE_IDS[1:])
    def test_a_refused_write_leaves_the_owners_task_unchanged(
        self,
        client: TestClient,
        auth: Auth,
        tenants: Tenants,
        method: str,
        suffix: str,
        body: object,
    ) -> None:
        alice, bob = tenants.alice, tenants.bob
        for task_id in tenants.ids(alice):
            call(client, auth, method, f"/api/{bob}/tasks/{task_id}{suffix}", body, bob)
        for task_id, created in tenants.tasks[alice].items():
            response = client.get(f"/api/{alice}/tasks/{task_id}", headers=auth(alice))
            assert response.status_code == 200
            assert response.json() == created

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [("GET", None, None), ("POST", None, {"title": "x"}), *ONE_TASK_ROUTES],
        ids=["list", "create", *ROUTE_IDS],
    )
    def test_a_token_on_another_users_path_is_403(
        self,
        client: TestClient,
        auth: Auth,
        tenants: Tenants,
        method: str,
        suffix: str | None,
        body: object,
    ) -> None:
        """`suffix` None addresses the collection; otherwise one of alice's own tasks."""
        alice, bob = tenants.alice, tenants.bob
        target = "" if suffix is None else f"/{tenants.one_of(alice)['id']}{suffix}"
        response = call(client, auth, method, f"/api/{alice}/tasks{target}", body, bob)
        assert response.status_code == 403, response.text
        assert sorted(listed_ids(client, auth, alice)) == sorted(tenants.ids(alice))
        assert client.get(
            f"/api/{alice}/tasks/{tenants.one_of(alice)['id']}", headers=auth(alice)
        ).json() == tenants.one_of(alice)

    def test_a_created_task_belongs_to_the_token_user_only(
        self, client: TestClient, auth: Auth, tenants: Tenants
    ) -> None:
        alice, bob = tenants.alice, tenants.bob
        created = client.post(f"/api/{bob}/tasks", json={"title": "new"}, headers=auth(bob))
        assert created.status_code == 201
        assert created.json()["user_id"] == bob
        assert created.json()["id"] in listed_ids(client, auth, bob)
        assert created.json()["id"] not in listed_ids(client, auth, alice)

    def test_the_same_idempotency_key_is_separate_per_user(
        self, client: TestClient, auth: Auth, tenants: Tenants
    ) -> None:
        """A key names a record per user: bob's key can neither replay nor block alice's."""
        alice, bob = tenants.alice, tenants.bob
        key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
        first = client.post(
            f"/api/{alice}/tasks", json={"title": "alice's"}, headers={**auth(alice), **key}
        )
        second = client.post(
            f"/api/{bob}/tasks", json={"title": "bob's"}, headers={**auth(bob), **key}
        )
        assert first.status_code == second.status_code == 201
        assert second.json()["user_id"] == bob and second.json()["title"] == "bob's"
        assert first.json()["id"] != second.json()["id"]
        assert second.json()["id"] not in listed_ids(client, auth, alice)

    def test_purging_expired_keys_never_touches_another_users_keys(
        self, client: TestClient, auth: Auth, tenants: Tenants, owner_conn: psycopg.Connection
    ) -> None:
        """Alice's keyed create purges her own expired keys; bob's expired key stays his."""
        alice, bob = tenants.alice, tenants.bob
        bobs_key = {"Idempotency-Key": f"bob-{uuid.uuid4()}"}
        client.post(f"/api/{bob}/tasks", json={"title": "bob's"}, headers={**auth(bob), **bobs_key})
        owner_conn.execute(
            "UPDATE idempotency_key SET expires_at = now() - interval '1 second'"
            " WHERE user_id = %s",
            (bob,),
        )
        alices_key = {"Idempotency-Key": f"alice-{uuid.uuid4()}"}
        created = client.post(
            f"/api/{alice}/tasks", json={"title": "alice's"}, headers={**auth(alice), **alices_key}
        )
        assert created.status_code == 201
        left = owner_conn.execute(
            "SELECT count(*) FROM idempotency_key WHERE user_id = %s", (bob,)
        ).fetchone()
        assert left == (1,)
