"""Blocking handlers, run on the event loop's own executor instead of anyio's worker threads.

Starlette runs a plain `def` endpoint through anyio's `to_thread.run_sync`: a capacity limiter,
a cancel scope and a future per call, about 120 us of CPU per hand-off against 60 us for
`loop.run_in_executor` (8 concurrent callers, uvloop; docs/performance.md). `in_thread` turns a
blocking handler into an `async def` that hands it to the loop's default executor, which the
app's lifespan sizes to the database pool (`use_executor`): no more handlers run at once than
there are pooled connections. The handler keeps its signature and globals (FastAPI reads both
through `__wrapped__`), so the published document is unchanged, and it runs in a copy of the
request's context, so its log lines keep the request id.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def in_thread(handler: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        call = functools.partial(contextvars.copy_context().run, handler, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, call)

    return run


def use_executor(max_threads: int) -> ThreadPoolExecutor:
    """Make a pool of `max_threads` the running loop's default executor; the caller shuts it
    down when the app stops."""
    executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="handler")
    asyncio.get_running_loop().set_default_executor(executor)
    return executor
