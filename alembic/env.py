"""Alembic environment: migrations run online, as the owner/migrator role, in one transaction."""

import os

from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

from alembic import context
from db.engine import sqlalchemy_url
from db.models import Task  # noqa: F401  (registers the table for autogenerate comparisons)

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "MIGRATION_DATABASE_URL"
    ) or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set MIGRATION_DATABASE_URL or DATABASE_URL, or run `tasks-api migrate`.")
    return sqlalchemy_url(url)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run them against a database.")
run_migrations_online()
