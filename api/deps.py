"""Annotated dependencies: each handler's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from db.session import Database


# `async def` although nothing here awaits: FastAPI runs a plain `def` dependency in the thread
# pool, and two extra thread hops per request cost more than the handler's own query
# (docs/performance.md).
async def current_user(request: Request) -> str:
    """The verified caller, recorded by BearerAuthentication before routing."""
    user_id: str = request.state.user_id
    return user_id


async def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


CurrentUser = Annotated[str, Depends(current_user)]
DatabaseDep = Annotated[Database, Depends(database)]
