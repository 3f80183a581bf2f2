"""Engine construction: one bounded pool per process, safe behind a transaction-mode pooler."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url


def sqlalchemy_url(url: str) -> str:
    """Accept the plain `postgresql://...` URL Neon's console gives; use the psycopg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}; use postgresql://")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class PoolConfig:
    size: int = 10
    max_overflow: int = 10
    timeout_seconds: float = 5.0
    connect_timeout_seconds: int = 5
    prepared_statements: bool = False


def build_engine(url: str, config: PoolConfig | None = None) -> Engine:
    """A pool that tests connections before use, so one Neon scale-to-zero does not fail a request.

    Prepared statements are off unless asked for: PgBouncer in transaction mode (before 1.21)
    and Neon's pooler may hand the next transaction a server connection that never saw them.
    """
    cfg = config or PoolConfig()
    return create_engine(
        sqlalchemy_url(url),
        pool_size=cfg.size,
        max_overflow=cfg.max_overflow,
        pool_timeout=cfg.timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": cfg.connect_timeout_seconds,
            "prepare_threshold": 5 if cfg.prepared_statements else None,
            "application_name": "tasks-api",
        },
    )
