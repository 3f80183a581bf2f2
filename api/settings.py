"""Runtime configuration: one pydantic-settings class read from the environment or `.env`.

Names are part of the operator contract (SPEC.md, "Configuration"); renaming one breaks deployments.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.engine import PrepareMode

MIN_SECRET_BYTES = 32
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute)\s*$")
# Commas separate replica URLs only where a new URL starts: a libpq multi-host URL
# (`postgresql://h1,h2/db`) keeps its own.
_URL_SEPARATOR = re.compile(r"\s*,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


class ConfigError(ValueError):
    """Configuration that would make the service insecure or unusable; startup stops on it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = None
    migration_database_url: str | None = None
    # Read replicas for list and get (SPEC.md, "Scale"); see docs/replicas.md.
    read_replica_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="DATABASE_READ_URL"
    )
    read_replica_max_lag_ms: int = Field(default=1000, ge=0)
    # How often each process samples the primary's and each replica's WAL position.
    read_replica_poll_ms: int = Field(default=100, ge=10, le=60_000)
    # Signs Consistency-Token; unset, a key is derived from JWT_SECRET.
    consistency_token_secret: SecretStr | None = None
    data_dir: Path = Field(default=Path(".tasks-api"), validation_alias="TASKS_DATA_DIR")

    jwt_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("JWT_SECRET", "BETTER_AUTH_SECRET")
    )
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("HS256",)
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_seconds: int = Field(default=300, ge=1)
    jwt_jwks_min_refetch_seconds: float = Field(default=10.0, ge=0)
    jwt_jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_user_claim: str = "sub"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A token claiming to live longer than this is refused: a stolen one must expire.
    jwt_max_lifetime_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    rate_limit: str = "100/s"
    # A bucket holds this many seconds of the rate: a quiet client may burst (200 at 100/s).
    rate_limit_burst_seconds: int = Field(default=2, ge=1, le=3600)
    # Budget per client address for requests that never authenticate (bad or missing tokens);
    # unset: ten times RATE_LIMIT. `off` disables it.
    rate_limit_address: str | None = None
    redis_url: str | None = None
    # Several deployments may share one Redis: each keeps its buckets under its own prefix.
    rate_limit_redis_prefix: str = "tasks-api:rl:"
    rate_limit_redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    # After a Redis failure, per-process buckets decide for this long before Redis is tried again.
    rate_limit_redis_retry_seconds: float = Field(default=1.0, gt=0, le=300)
    metrics_enabled: bool = True
    # /metrics is never on the public listener: `serve` answers it on its own listener at
    # METRICS_BIND:METRICS_PORT (loopback unless said otherwise), and not at all while unset.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_bind: str = "127.0.0.1"

    db_pool_size: int = Field(default=10, ge=1)
    db_pool_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: int = Field(default=5, ge=1)
    # How long a new connection is retried (with backoff) before the request is answered 503,
    # and how long `serve` waits at startup for a database that is down (e.g. restarting).
    db_connect_retry_seconds: float = Field(default=2.0, ge=0)
    db_startup_wait_seconds: float = Field(default=30.0, ge=0)
    db_statement_timeout_ms: int = Field(default=5000, ge=1)
    db_idle_in_transaction_timeout_ms: int = Field(default=10000, ge=1)
    # `auto`: prepared on a connection that reaches PostgreSQL itself, never behind a pooler
    # (PgBouncer < 1.21 cannot keep them); `true` also behind one (PgBouncer 1.21+); `false` never.
    db_prepared_statements: PrepareMode = "auto"

    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # The HTTP server (uvicorn with httptools) sets no limit of its own on request headers.
    max_header_bytes: int = Field(default=32 * 1024, ge=16 * 1024)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    retry_after_seconds: int = Field(default=2, ge=1)
    log_json: bool = False
    log_level: str = "INFO"

    @field_validator("jwt_algorithms", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("read_replica_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part for part in _URL_SEPARATOR.split(value.strip()) if part)
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS]
        if unknown:
            raise ValueError(f"unsupported JWT algorithm(s): {', '.join(unknown)}")
        if not value:
            raise ValueError("JWT_ALGORITHMS must name at least one algorithm")
        return value

    @field_validator("rate_limit", "rate_limit_address")
    @classmethod
    def _rate_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.strip().lower() != "off" and not _RATE.match(value.lower()):
            raise ValueError("RATE_LIMIT must look like '100/s', '600/min' or 'off'")
        return value

    @model_validator(mode="after")
    def _secret_strength(self) -> Settings:
        for name, secret in (
            ("JWT_SECRET", self.jwt_secret),
            ("CONSISTENCY_TOKEN_SECRET", self.consistency_token_secret),
        ):
            if secret is not None and len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"{name} must be at least {MIN_SECRET_BYTES} bytes (generate one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
        return self

    @property
    def local_mode(self) -> bool:
        """No DATABASE_URL: an embedded PostgreSQL and a generated secret are acceptable."""
        return self.database_url is None

    @property
    def hmac_algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in self.jwt_algorithms if a in HMAC_ALGORITHMS)

    @property
    def asymmetric_algorithms(self) -> tuple[str, ...]:
        return tuple(a for a in self.jwt_algorithms if a in ASYMMETRIC_ALGORITHMS)

    @property
    def rate_per_second(self) -> float | None:
        """The per-user budget in requests per second, or None when limiting is off."""
        return _per_second(self.rate_limit)

    @property
    def address_rate_per_second(self) -> float | None:
        """The budget per client address for unauthenticated requests, or None when off."""
        if self.rate_limit_address is None:
            user_rate = self.rate_per_second
            return None if user_rate is None else user_rate * 10
        return _per_second(self.rate_limit_address)

    def token_scope_warning(self) -> str | None:
        """What an operator must hear at startup when tokens are not tied to this service."""
        if self.local_mode or self.jwt_issuer is not None or self.jwt_audience is not None:
            return None
        return (
            "JWT_ISSUER and JWT_AUDIENCE are both unset: any token this service can verify is "
            "accepted, including one the same secret or issuer minted for another service "
            "(it acts as its `sub` here). Set both in production (README, Configuration)."
        )

    def require_verification_keys(self) -> None:
        """Refuse to serve a deployed database when no token could ever be verified safely."""
        if self.hmac_algorithms and self.jwt_secret is None and not self.local_mode:
            raise ConfigError(
                "JWT_SECRET (or BETTER_AUTH_SECRET) is required when DATABASE_URL is set and an "
                f"HMAC algorithm is allowed (JWT_ALGORITHMS={','.join(self.jwt_algorithms)})"
            )
        if self.asymmetric_algorithms and not self.jwt_jwks_url:
            raise ConfigError(
                "JWT_JWKS_URL is required when JWT_ALGORITHMS allows "
                + ",".join(self.asymmetric_algorithms)
            )
        if self.jwt_jwks_url and not self.asymmetric_algorithms:
            # Every issuer token would be refused as "algorithm not allowed": say so at startup.
            raise ConfigError(
                "JWT_JWKS_URL is set but JWT_ALGORITHMS allows no asymmetric algorithm; add the "
                "issuer's (Better Auth's default is EdDSA), e.g. JWT_ALGORITHMS=EdDSA"
            )
        scheme, sep, _ = (self.jwt_jwks_url or "").partition("://")
        if sep and scheme.lower() not in {"http", "https"}:
            raise ConfigError("JWT_JWKS_URL must be an http(s):// URL or a file path")


def _per_second(rate: str) -> float | None:
    """'100/s' or '600/min' as requests per second; None for 'off' (validated on load)."""
    match = _RATE.match(rate.lower())
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2)
    return count / (1.0 if unit.startswith("s") else 60.0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
