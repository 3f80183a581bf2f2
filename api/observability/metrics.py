"""Prometheus metrics: what operators graph and alert on, served at /metrics.

Never on the public listener: the series name routes, statuses, pool sizes and error causes,
which is reconnaissance for an outsider. `tasks-api serve` exposes them on a listener of their
own (`serve_metrics`, METRICS_BIND:METRICS_PORT); `metrics_app` is the same exposition as an
ASGI app, for embedding the service elsewhere (and for the tests).

Labels are bounded on purpose: routes are templates (`/api/{user_id}/tasks/{task_id}`), never raw
paths, and no label carries a user id, so a client cannot grow the series count.

With several workers (`tasks-api serve --workers N`), each process keeps its own values;
prometheus_client's multiprocess mode, switched on by PROMETHEUS_MULTIPROC_DIR set before the
workers start (`serve` does this itself for N > 1), lets any worker answer a scrape with the sum.
"""

from __future__ import annotations

import os
import weakref
from functools import lru_cache
from typing import Any

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.replicas import Replica
from db.unit_of_work import ReadServed, UnitOfWork

REQUESTS = Counter(
    "tasks_api_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tasks_api_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response body.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_POOL = Gauge(
    "tasks_api_db_pool_connections",
    "Database pool: connections in use, idle in the pool, and requests waiting for one.",
    ["state"],
    multiprocess_mode="livesum",
)
DB_ERRORS = Counter(
    "tasks_api_db_errors_total",
    "Requests that failed on a database error, by outcome (unavailable: 503, error: 500) and "
    "cause (SQLSTATE class, 'pool_timeout', or 'no_answer' when the server never replied).",
    ["outcome", "cause"],
)
DB_READS = Counter(
    "tasks_api_db_reads_total",
    "Pipelined reads (list, get) by where they ran: `primary` or a replica's stable label "
    "(`replica0` is the first URL of DATABASE_READ_URL; never the URL itself).",
    ["target"],
)
READS_SENT_TO_PRIMARY = Counter(
    "tasks_api_db_reads_sent_to_primary_total",
    "Replica-eligible reads answered by the primary, by reason: `token` (no replica had "
    "replayed the client's Consistency-Token), `lag` (no replica within "
    "READ_REPLICA_MAX_LAG_MS or reachable), `replica_error` (the replica failed the read).",
    ["reason"],
)
REPLICA_LAG = Gauge(
    "tasks_api_db_replica_lag_seconds",
    "How far behind the primary each replica was at the last check (-1: unknown).",
    ["replica", "host"],
    multiprocess_mode="max",
)
REPLICA_IN_ROTATION = Gauge(
    "tasks_api_db_replica_in_rotation",
    "1 while a replica may serve reads (within the lag bound and reachable), else 0.",
    ["replica", "host"],
    multiprocess_mode="min",
)
RATE_LIMIT_REJECTIONS = Counter(
    "tasks_api_rate_limit_rejections_total",
    "Requests refused with 429, by policy (per-user, per-address).",
    ["policy"],
)
REDIS_ERRORS = Counter(
    "tasks_api_rate_limit_redis_errors_total",
    "Failed calls to the shared rate-limit store (the request was let through).",
    ["error"],
)
RATE_LIMIT_DEGRADED = Counter(
    "tasks_api_rate_limit_degraded_total",
    "Rate-limit decisions taken by per-process buckets because Redis was unavailable.",
)


# A series' child, looked up once: `labels()` checks and locks on every call, and the hot path
# records five series per request. The label sets are bounded (see above), and so these caches.
@lru_cache(maxsize=4096)
def _request_series(method: str, route: str, status: int) -> tuple[Any, Any]:
    labels = (method, route, str(status))
    return REQUESTS.labels(*labels), LATENCY.labels(*labels)


@lru_cache(maxsize=64)
def _pool_series(state: str) -> Any:
    return DB_POOL.labels(state=state)


@lru_cache(maxsize=64)
def _read_series(target: str) -> Any:
    return DB_READS.labels(target=target)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    requests, latency = _request_series(method, route, status)
    requests.inc()
    latency.observe(seconds)


def sample_pool(uow: UnitOfWork) -> None:
    """Copy the pool's public counters, and the unit of work's own count of requests waiting
    for a connection, into the gauges (only QueuePool-like pools report them)."""
    pool = uow.engine.pool
    if isinstance(pool, QueuePool):
        _pool_series("in_use").set(pool.checkedout())
        _pool_series("idle").set(pool.checkedin())
    _pool_series("waiting").set(uow.waiting_for_connection)


# How often each worker copies its pool's counters into the gauges. Copied on every checkout
# and checkin instead, that was six gauge writes per read (with several workers, each a locked
# write to the worker's file) for a value a scrape reads every 15 s or so.
POOL_SAMPLE_SECONDS = 1.0


async def sample_pool_every(uow: UnitOfWork, seconds: float | None = None) -> None:
    """Keep the pool gauges current in this worker until cancelled (the app's lifespan runs
    it); a scrape of a single process also samples at that moment (`metrics_endpoint`)."""
    while True:
        sample_pool(uow)
        await anyio.sleep(POOL_SAMPLE_SECONDS if seconds is None else seconds)


_instrumented: weakref.WeakSet[UnitOfWork] = weakref.WeakSet()


def instrument(uow: UnitOfWork) -> None:
    """Count every read by where it ran, and follow the replicas' state, in every worker."""
    if uow in _instrumented:
        return
    _instrumented.add(uow)
    uow.read_listeners.append(record_read)
    if uow.replicas is not None:
        uow.replicas.listeners.append(record_replica_state)


def record_read(served: ReadServed) -> None:
    _read_series(served.target).inc()
    if served.fallback is not None:
        READS_SENT_TO_PRIMARY.labels(reason=served.fallback).inc()


def record_replica_state(replica: Replica) -> None:
    lag = replica.state.lag_seconds
    REPLICA_LAG.labels(replica=replica.label, host=replica.host).set(-1 if lag is None else lag)
    REPLICA_IN_ROTATION.labels(replica=replica.label, host=replica.host).set(
        1 if replica.state.in_rotation else 0
    )


def record_database_error(exc: BaseException, *, unavailable: bool) -> None:
    """Count one request lost to the database (called where such errors become responses)."""
    original = getattr(exc, "orig", None) or exc
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        cause = sqlstate[:2]
    elif isinstance(exc, PoolTimeoutError):
        cause = "pool_timeout"
    else:
        cause = "no_answer"
    DB_ERRORS.labels(outcome="unavailable" if unavailable else "error", cause=cause).inc()


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def metrics_endpoint(request: Request) -> Response:
    sample_pool(request.app.state.unit_of_work)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def metrics_app(uow: UnitOfWork) -> Starlette:
    """/metrics alone, for the process that runs `uow`'s requests."""
    app = Starlette(routes=[Route("/metrics", metrics_endpoint, methods=["GET"])])
    app.state.unit_of_work = uow
    return app


def serve_metrics(bind: str, port: int) -> None:
    """Answer scrapes at http://bind:port/metrics from a daemon thread of this process.

    Called by `serve` before the workers start: with one worker the app runs in this process
    (its own registry); with several, PROMETHEUS_MULTIPROC_DIR is already set and the registry
    sums the workers' files.
    """
    start_http_server(port, addr=bind, registry=_registry())
