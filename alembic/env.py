"""Alembic environment: migrations run online, as the owner/migrator role, in one transaction.

Offline (`alembic upgrade head --sql`) prints the same SQL instead of running it, for review
and for the migration linter (tests/migrations/): the revisions are static SQL, so nothing in
them needs a live connection.
"""

import os

from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

from alembic import context
from db.engine import sqlalchemy_url
from db.models import Task  # noqa: F401  (registers the table for autogenerate comparisons)

config = context.config
target_metadata = SQLModel.metadata

# A migration that cannot get its lock within LOCK_TIMEOUT fails (run it again) instead of
# holding every request queued behind its ACCESS EXCLUSIVE request; set transaction-locally, so
# the same text works behind any connection. Squawk (tests/migrations/) checks they are set.
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "300s"


def _run_in_transaction() -> None:
    with context.begin_transaction():
        context.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        context.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        context.run_migrations()


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
        _run_in_transaction()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        _run_in_transaction()
    engine.dispose()


def run_migrations_offline() -> None:
    # Only the dialect matters offline; no connection is made, so any PostgreSQL URL will do.
    url = config.get_main_option("sqlalchemy.url") or "postgresql+psycopg://"
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        transaction_per_migration=False,
    )
    _run_in_transaction()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
