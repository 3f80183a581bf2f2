"""The application factory: settings in, a wired FastAPI app out.

Reading this file top to bottom shows a request's path through the service: the middleware
stack (outermost first in the comment below), then the routes. docs/architecture.md draws it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api.auth.jwks import jwks_keys
from api.auth.middleware import BearerAuthentication
from api.auth.token_cache import CachedTokenVerifier
from api.auth.tokens import TokenVerifier
from api.http import health
from api.http.consistency import HEADER as CONSISTENCY_TOKEN
from api.http.consistency import TokenCodec
from api.http.errors import install_error_handlers
from api.http.head import HeadAsGet
from api.http.no_store import NoStoreForApi
from api.http.openapi import install as install_openapi
from api.http.size_limits import BodySizeLimit, HeaderSizeLimit
from api.http.tenant_route import TenantPath
from api.http.websocket import RefuseWebSockets
from api.observability.access_log import RequestObservation
from api.observability.logs import configure_logging
from api.observability.metrics import instrument, sample_pool_every
from api.ratelimit.buckets import RateLimits
from api.ratelimit.middleware import AddressRateLimit, UserRateLimit
from api.settings import ConfigError, Settings, get_settings
from api.tasks import routes as tasks
from db.engine import PoolConfig, build_engine
from db.identity import TransactionLimits
from db.replicas import ReplicaSet
from db.unit_of_work import UnitOfWork

DESCRIPTION = """\
A multi-tenant tasks API. Every request acts as the user named by a verified JWT; PostgreSQL
row-level security and explicit `user_id` filters each keep users' tasks apart on their own.
Errors are RFC 9457 `application/problem+json`.
"""


def build_unit_of_work(settings: Settings) -> UnitOfWork:
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL is not set; start the service with `tasks-api serve`.")
    pool = PoolConfig(
        size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        timeout_seconds=settings.db_pool_timeout_seconds,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
        connect_retry_budget_seconds=settings.db_connect_retry_seconds,
        prepared_statements=settings.db_prepared_statements,
    )
    replicas = None
    if settings.read_replica_urls:
        replicas = ReplicaSet(
            settings.database_url,
            settings.read_replica_urls,
            max_lag_seconds=settings.read_replica_max_lag_ms / 1000,
            poll_interval_seconds=settings.read_replica_poll_ms / 1000,
            pool=pool,
        )
    return UnitOfWork(
        build_engine(settings.database_url, pool),
        TransactionLimits(
            statement_timeout_ms=settings.db_statement_timeout_ms,
            idle_in_transaction_timeout_ms=settings.db_idle_in_transaction_timeout_ms,
        ),
        replicas,
    )


def create_app(
    settings: Settings | None = None, unit_of_work: UnitOfWork | None = None
) -> FastAPI:
    settings = settings or get_settings()
    settings.require_verification_keys()
    configure_logging(settings.log_level, settings.log_json)
    consistency_tokens = TokenCodec.from_settings(settings)
    uow = unit_of_work or build_unit_of_work(settings)
    instrument(uow)
    limits = RateLimits.from_settings(settings)
    jwks = jwks_keys(settings)
    verifier = CachedTokenVerifier(TokenVerifier(settings, resolve_key=jwks), settings, jwks)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if jwks is not None:
            # Fetch the issuer's keys before serving; if it is down, requests retry (bounded).
            await anyio.to_thread.run_sync(jwks.refresh)
        # Judge the replicas once before the first read; a replica down now starts out of
        # rotation and the monitor puts it in when it answers.
        await anyio.to_thread.run_sync(uow.start)
        # What exists now (modules, routes, schemas, the pool) lives as long as the process:
        # frozen, it is never rescanned by the collector, which shortens its pauses.
        gc.collect()
        gc.freeze()
        # As many units of work at once as the pool keeps connections: the blocking handlers
        # (writes) take a token per thread and the awaited reads one each (db.unit_of_work), so
        # the pool never runs dry under the event loop. A thread beyond that only waits, or
        # opens an overflow connection that is closed again on return; that churn cost a third
        # of list's throughput at 64 connections (docs/performance.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.db_pool_size
        sampling = asyncio.create_task(sample_pool_every(uow))
        yield
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await limits.limiter.aclose()
        uow.dispose()

    # /docs and /redoc from assets installed with the package (fastapi-offline): FastAPI's own
    # pages load Swagger UI from a CDN, without integrity checks, and are blank offline.
    app = FastAPIOffline(
        title="Tasks API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # No 307 to the path with(out) its trailing slash: it named whatever Host the client
        # sent, before the tenant check. Such a path is a 404 like any other unknown one.
        redirect_slashes=False,
        # The service exports its own Prometheus metrics (api/observability/metrics.py).
        # FastAPI's built-in OpenTelemetry hooks looked up the global OTel providers on every
        # request (~5% of a request's CPU under py-spy, docs/performance.md) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.unit_of_work = uow
    app.state.consistency_tokens = consistency_tokens
    install_error_handlers(app, settings.retry_after_seconds)
    app.include_router(health.router)
    app.include_router(tasks.router)
    install_openapi(app)

    # Added innermost first: a request meets the request id and access log, CORS, the cache
    # header wrapper, the per-address limit, the header limit, authentication, the per-user
    # limit (keyed by the verified user), the tenant check and the body limit before it is
    # routed: 401, then 403, then 413, with no body byte read before them. A WebSocket
    # handshake meets the same checks and is then refused; a HEAD is routed as its GET.
    app.add_middleware(HeadAsGet)
    app.add_middleware(RefuseWebSockets)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TenantPath)
    if limits.user is not None:
        app.add_middleware(UserRateLimit, limiter=limits.limiter, policy=limits.user)
    app.add_middleware(BearerAuthentication, verifier=verifier)
    app.add_middleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes)
    if limits.address is not None:
        app.add_middleware(AddressRateLimit, limiter=limits.limiter, policy=limits.address)
    app.add_middleware(NoStoreForApi)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            # Every request header the document declares, so browser clients can send them.
            allow_headers=[
                *("Authorization", "Content-Type", "If-Match", "If-None-Match"),
                *("Idempotency-Key", "X-Request-ID", CONSISTENCY_TOKEN),
            ],
            expose_headers=[
                *("ETag", "Location", "Link", "Retry-After"),
                *("RateLimit", "RateLimit-Policy", "X-Request-ID", "Idempotent-Replayed"),
                *("WWW-Authenticate", CONSISTENCY_TOKEN),
            ],
        )
    routes = [*app.router.routes, *health.router.routes, *tasks.router.routes]
    app.add_middleware(RequestObservation, routes=routes)
    return app


def published_document() -> dict[str, Any]:
    """The document as every deployment serves it; it depends on no setting, so no
    configuration, database or secret is needed to print it."""
    settings = Settings(
        _env_file=None,
        database_url="postgresql://openapi@127.0.0.1:1/unused",
        jwt_secret=secrets.token_urlsafe(48),
        jwt_jwks_url=None,
        jwt_algorithms=("HS256",),
    )
    return create_app(settings).openapi()
