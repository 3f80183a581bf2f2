"""Authenticated responses are per user: `Cache-Control: no-store` on every one of them.

A shared cache (a CDN, a corporate proxy) that kept one user's list could serve it to the
next; `no-store` (and `Vary: Authorization`) is on successes and errors alike.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

Auth = Callable[[str], dict[str, str]]


def test_every_api_response_is_no_store(
    client: TestClient, auth: Auth, alice: str, bob: str
) -> None:
    base = f"/api/{alice}/tasks"
    created = client.post(base, json={"title": "x"}, headers=auth(alice))
    item = f"{base}/{created.json()['id']}"
    responses = {
        "201 create": created,
        "200 list": client.get(base, headers=auth(alice)),
        "200 get": client.get(item, headers=auth(alice)),
        "200 put": client.put(item, json={"title": "y"}, headers=auth(alice)),
        "200 patch": client.patch(item, json={"title": "z"}, headers=auth(alice)),
        "200 complete": client.patch(f"{item}/complete", headers=auth(alice)),
        "401 no token": client.get(base),
        "403 other path": client.get(f"/api/{bob}/tasks", headers=auth(alice)),
        "404 foreign": client.get(item.replace(alice, bob, 1), headers=auth(bob)),
        "422 invalid": client.post(base, json={"title": ""}, headers=auth(alice)),
        "204 delete": client.delete(item, headers=auth(alice)),
    }
    for name, response in responses.items():
        assert str(response.status_code) == name.split()[0], name
        assert response.headers.get("cache-control") == "no-store", name
        assert "Authorization" in response.headers.get("vary", ""), name
