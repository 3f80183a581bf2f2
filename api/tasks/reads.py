"""What every read of tasks takes, resolved as one dependency.

FastAPI solves each dependency on its own (its parameters, its call, its place in the cache),
and list and get each took five: the caller, the unit of work, the token codec, the
`Consistency-Token` and `If-None-Match` (under py-spy, `solve_dependencies` was the largest
function of FastAPI's own on a list request). `TaskRead` takes the same parameters in the same
order, so the published document is unchanged, and is solved once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from api.auth.caller import Caller
from api.deps import UserIdPath, current_caller, unit_of_work
from api.http.consistency import TokenHeader, read_after, token_codec
from api.tasks.conditional import IfNoneMatchHeader, if_none_match_fields
from db.unit_of_work import Query, UnitOfWork


@dataclass(frozen=True)
class OneTaskRead:
    """The caller, the unit of work, the WAL position the answer must reflect (from the
    client's `Consistency-Token`) and the client's `If-None-Match` tags."""

    caller: Caller
    db: UnitOfWork
    read_after: int | None
    if_none_match: list[str] | None

    @property
    def user(self) -> str:
        return self.caller.user_id

    async def rows(self, query: Query) -> list[Any]:
        """The query's rows, from a replica fresh enough for the client's last write (or the
        primary), awaited on the event loop (`UnitOfWork.read`)."""
        return await self.db.read(self.user, query, from_replica=True, at_least=self.read_after)


async def one_task_read(
    request: Request,
    user_id: UserIdPath,
    token: TokenHeader = None,
    if_none_match: IfNoneMatchHeader = None,
) -> OneTaskRead:
    return OneTaskRead(
        await current_caller(request, user_id),
        await unit_of_work(request),
        await read_after(await token_codec(request), token),
        await if_none_match_fields(request, if_none_match),
    )


TaskRead = Annotated[OneTaskRead, Depends(one_task_read)]
