"""Annotated dependencies: each handler's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from api.auth.caller import Caller, caller_of
from db.identity import USER_ID_RULES
from db.unit_of_work import UnitOfWork

UserIdPath = Annotated[
    str,
    Path(
        **USER_ID_RULES,
        description="The caller's user id; must equal the token's identity claim.",
        examples=["user_123"],
    ),
]


# `async def` although nothing here awaits: FastAPI runs a plain `def` dependency in the thread
# pool, and two extra thread hops per request cost more than the handler's own query
# (docs/performance.md).
async def current_caller(request: Request, user_id: UserIdPath) -> Caller:
    """The verified caller (BearerAuthentication), whose id TenantRoute matched to the path.

    `user_id` is declared here, once, so the document publishes its rules for every route."""
    caller = caller_of(request.scope)
    assert caller is not None and caller.user_id == user_id, "TenantRoute checked the path"
    return caller


async def unit_of_work(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.unit_of_work
    return uow


CurrentCaller = Annotated[Caller, Depends(current_caller)]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(unit_of_work)]
