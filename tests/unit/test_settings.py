"""Configuration names and refusals that operators rely on (SPEC.md, "Configuration")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import ConfigError, Settings

STRONG = "s" * 32


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "JWT_SECRET",
        "BETTER_AUTH_SECRET",
        "JWT_ALGORITHMS",
        "JWT_JWKS_URL",
        "JWT_LEEWAY_SECONDS",
        "RATE_LIMIT",
        "JWT_USER_CLAIM",
    ):
        monkeypatch.delenv(name, raising=False)


def test_better_auth_secret_is_an_alias_for_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BETTER_AUTH_SECRET", STRONG)
    loaded = settings()
    assert loaded.jwt_secret is not None
    assert loaded.jwt_secret.get_secret_value() == STRONG


def test_secret_shorter_than_32_bytes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "s" * 31)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        settings()


def test_secret_is_never_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", STRONG)
    assert STRONG not in repr(settings())


def test_algorithms_are_a_comma_separated_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "HS256, EdDSA")
    assert settings().jwt_algorithms == ("HS256", "EdDSA")


def test_unknown_algorithm_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "none")
    with pytest.raises(ValidationError):
        settings()


def test_defaults_match_the_contract() -> None:
    loaded = settings()
    assert loaded.jwt_algorithms == ("HS256",)
    assert loaded.jwt_leeway_seconds == 30
    assert loaded.jwt_user_claim == "sub"
    assert loaded.rate_limit == "100/s"


def test_leeway_can_be_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_LEEWAY_SECONDS", "0")
    assert settings().jwt_leeway_seconds == 0


def test_deployed_database_without_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/tasks")
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        settings().require_verification_keys()


def test_local_mode_without_secret_is_allowed() -> None:
    settings().require_verification_keys()


def test_asymmetric_algorithms_need_a_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "EdDSA")
    with pytest.raises(ConfigError, match="JWT_JWKS_URL"):
        settings().require_verification_keys()


@pytest.mark.parametrize(
    ("value", "per_second"), [("100/s", 100.0), ("600/min", 10.0), ("off", None)]
)
def test_rate_limit_budget(
    monkeypatch: pytest.MonkeyPatch, value: str, per_second: float | None
) -> None:
    monkeypatch.setenv("RATE_LIMIT", value)
    assert settings().rate_per_second == per_second


def test_read_replica_urls_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DATABASE_READ_URL", "postgresql://r1.example/db, postgres://u:p@r2.example:6432/db"
    )
    assert settings().read_replica_urls == (
        "postgresql://r1.example/db",
        "postgres://u:p@r2.example:6432/db",
    )


def test_a_multi_host_replica_url_keeps_its_own_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_READ_URL", "postgresql://h1:5432,h2:5432/db,postgresql://h3/db")
    assert settings().read_replica_urls == ("postgresql://h1:5432,h2:5432/db", "postgresql://h3/db")


def test_without_read_replicas_every_read_goes_to_the_primary() -> None:
    assert settings().read_replica_urls == ()


def test_replica_lag_bound_defaults_to_one_second() -> None:
    assert settings().read_replica_max_lag_ms == 1000


def test_replica_lag_bound_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("READ_REPLICA_MAX_LAG_MS", "250")
    assert settings().read_replica_max_lag_ms == 250


def test_consistency_token_secret_shorter_than_32_bytes_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSISTENCY_TOKEN_SECRET", "short")
    with pytest.raises(ValidationError, match="CONSISTENCY_TOKEN_SECRET must be at least 32"):
        settings()
