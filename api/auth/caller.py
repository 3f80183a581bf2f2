"""The verified caller: who a request acts as, once its token has been checked.

Authentication puts one `Caller` in the ASGI scope under `"user"` (Starlette's convention, so
`request.user` works too); the tenant check, the route dependencies, the per-user rate limit and
the access log all read it from there and from nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.authentication import BaseUser
from starlette.types import Scope


@dataclass(frozen=True, slots=True)
class Caller(BaseUser):
    """A user whose token verified; `user_id` is the identity claim, already validated."""

    user_id: str

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user_id

    @property
    def identity(self) -> str:
        return self.user_id


def authenticate(scope: Scope, caller: Caller) -> None:
    scope["user"] = caller


def caller_of(scope: Scope) -> Caller | None:
    """The request's verified caller, or None before (or without) authentication."""
    user = scope.get("user")
    return user if isinstance(user, Caller) else None
