"""The verified caller: one typed object in the ASGI scope, read by all that follows."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from starlette.authentication import BaseUser

from api.auth.caller import Caller, authenticate, caller_of

Auth = Callable[[str], dict[str, str]]


def test_a_caller_is_a_starlette_user_named_by_its_id() -> None:
    caller = Caller("alice")
    assert isinstance(caller, BaseUser)
    assert caller.is_authenticated
    assert caller.display_name == caller.identity == "alice"


def test_a_scope_has_no_caller_until_authentication_records_one() -> None:
    scope: dict[str, object] = {"type": "http"}
    assert caller_of(scope) is None
    authenticate(scope, Caller("alice"))
    assert caller_of(scope) == Caller("alice")


def test_anything_else_under_the_user_key_is_not_a_caller() -> None:
    assert caller_of({"type": "http", "user": "alice"}) is None


def test_a_request_with_a_valid_token_acts_as_its_caller(
    client: TestClient, auth: Auth, alice: str
) -> None:
    created = client.post(f"/api/{alice}/tasks", json={"title": "Mine"}, headers=auth(alice))
    assert created.status_code == 201
    assert created.json()["user_id"] == alice
