"""What a read costs on each path, and a write with and without its commit LSN, in one run.

    .venv/bin/python -m bench.replica_reads [--rounds 2000]

Starts a private primary and streaming standby (tests/support/standby.py), seeds one user with
20 tasks, and times `UnitOfWork.read` of the default list page through every path the router
can take, interleaved round by round (so machine noise lands on every path alike):
- `primary`: a read not marked for replicas;
- `replica`: a replica read without a token;
- `replica+token`: a token read the standby has replayed (the replay check rides the pipeline);
- `token->primary`: a token the standby has not reached (decided from the monitor's state, so
  the standby is never asked);
and `UnitOfWork.run` against `UnitOfWork.write` (COMMIT plus the LSN in the same message) for a
one-row update. Prints microseconds (median, p95) per path and the reads each target served.
Loopback only; bounded by --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import time
from collections.abc import Awaitable, Callable

import psycopg
from sqlalchemy import text
from sqlmodel import Session

from db import tasks
from db.engine import build_engine
from db.migrate import upgrade_to_head
from db.replicas import ReplicaSet
from db.tasks import SortOrder, StatusFilter
from db.unit_of_work import ReadServed, UnitOfWork
from tests.support.standby import replicated_pair

USER = "bench-reader"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with replicated_pair() as pair:
        with psycopg.connect(pair.primary.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE tasks")
        primary_url, standby_url = pair.primary.url_for("tasks"), pair.standby.url_for("tasks")
        upgrade_to_head(primary_url)
        with psycopg.connect(primary_url, autocommit=True) as conn:
            for n in range(20):
                conn.execute("INSERT INTO task (user_id, title) VALUES (%s, %s)", (USER, f"t{n}"))
        pair.wait_for_replay()
        replicas = ReplicaSet(primary_url, [standby_url], max_lag_seconds=3600.0)
        uow = UnitOfWork(build_engine(primary_url), replicas=replicas)
        replicas.poll_once()
        served: collections.Counter[str] = collections.Counter()
        uow.read_listeners.append(lambda s: served.update([_label(s)]))
        query = tasks.list_query(
            USER, status=StatusFilter.all, sort=SortOrder.created_desc, limit=51
        )
        replayed = replicas.replicas[0].state.replay_lsn or 0
        unreachable = replayed + 2**40

        def touch(session: Session) -> None:
            session.execute(
                text(
                    "UPDATE task SET completed = NOT completed WHERE user_id = :u AND title = 't0'"
                ),
                {"u": USER},
            )

        # Reads are coroutines, writes are not: each timed read is one awaited `uow.read`, all
        # in one event loop (`_timed`), so no loop's start-up lands in a read's figure.
        reads: dict[str, Callable[[], Awaitable[object]]] = {
            "read primary": lambda: uow.read(USER, query),
            "read replica": lambda: uow.read(USER, query, from_replica=True),
            "read replica+token": lambda: uow.read(
                USER, query, from_replica=True, at_least=replayed
            ),
            "read token->primary": lambda: uow.read(
                USER, query, from_replica=True, at_least=unreachable
            ),
        }
        writes: dict[str, Callable[[], object]] = {
            "write run (COMMIT)": lambda: uow.run(USER, touch),
            "write write (COMMIT+LSN)": lambda: uow.write(USER, touch),
        }
        timings = asyncio.run(_timed(reads, writes, args.rounds, served.clear))
        uow.dispose()
    print(f"{args.rounds} interleaved rounds, one 20-row list page per read")
    for name, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95)]
        print(f"  {name:26s} median {statistics.median(values):7.0f} us   p95 {p95:7.0f} us")
    print("reads served:", dict(served))


async def _timed(
    reads: dict[str, Callable[[], Awaitable[object]]],
    writes: dict[str, Callable[[], object]],
    rounds: int,
    warmed: Callable[[], None],
) -> dict[str, list[float]]:
    """Microseconds per call of every path, interleaved round by round, after one warm-up
    call each (pools and statement caches); `warmed` runs between the two."""
    for read in reads.values():
        await read()
    for write in writes.values():
        write()
    warmed()
    timings: dict[str, list[float]] = {name: [] for name in [*reads, *writes]}
    for _ in range(rounds):
        for name, read in reads.items():
            started = time.perf_counter()
            await read()
            timings[name].append((time.perf_counter() - started) * 1e6)
        for name, write in writes.items():
            started = time.perf_counter()
            write()
            timings[name].append((time.perf_counter() - started) * 1e6)
    return timings


def _label(served: ReadServed) -> str:
    return served.target if served.fallback is None else f"{served.target} ({served.fallback})"


if __name__ == "__main__":
    main()
