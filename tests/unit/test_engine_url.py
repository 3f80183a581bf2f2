"""DATABASE_URL takes the plain string Neon's console gives."""

from __future__ import annotations

import pytest

from db.engine import sqlalchemy_url


def test_neon_console_url_gets_the_psycopg_driver_and_keeps_its_parameters() -> None:
    url = "postgresql://alex:AbC123dEf@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/dbname?sslmode=require&channel_binding=require"
    converted = sqlalchemy_url(url)
    assert converted.startswith(
        "postgresql+psycopg://alex:AbC123dEf@ep-cool-darkness-123456-pooler"
    )
    assert "sslmode=require" in converted and "channel_binding=require" in converted


def test_postgres_scheme_alias_is_accepted() -> None:
    assert sqlalchemy_url("postgres://u@h/d").startswith("postgresql+psycopg://")


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        sqlalchemy_url("mysql://u@h/d")
