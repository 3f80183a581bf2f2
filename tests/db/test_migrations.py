"""Migrations are reversible and agree with the models.

The round trip runs on a fresh database: upgrade to head, downgrade to base, upgrade again, and
the schema (columns, constraints, indexes, functions, triggers, RLS, policies, grants) must come
back identical. The drift check asks Alembic's autogenerate what it would change to make the
migrated database match db/models.py: the answer must be nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers every table on SQLModel.metadata)
from alembic import command
from db.catalog import snapshot, tenant_tables
from db.engine import sqlalchemy_url
from db.migrate import alembic_config, downgrade_to, head_revision, upgrade_to_head
from tests.support.postgres import throwaway_database

_SCHEMA_SHAPE = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default,
               character_maximum_length
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "functions": """
        SELECT proname, pg_get_functiondef(oid), proacl::text
        FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "triggers": """
        SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal ORDER BY 1""",
    # The explicit grant (PUBLIC also holds USAGE on public by default).
    "schema_grants": """
        SELECT a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a
        WHERE n.nspname = 'public' AND a.grantee = 'tasks_app'::regrole ORDER BY 1""",
}


def schema_shape(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        shape: dict[str, Any] = {
            name: conn.execute(query).fetchall() for name, query in _SCHEMA_SHAPE.items()
        }
        shape["security"] = snapshot(conn, tables=tenant_tables(conn))
        conn.rollback()
    return shape


def app_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def fresh_url(admin_url: str) -> Iterator[str]:
    with throwaway_database(admin_url, migrate=False, prefix="tasks_migrations") as url:
        yield url


def test_upgrade_downgrade_upgrade_round_trip_restores_the_same_schema(fresh_url: str) -> None:
    upgrade_to_head(fresh_url)
    first = schema_shape(fresh_url)
    assert first["security"].policies, "the head schema has policies to compare"

    downgrade_to(fresh_url, "base")
    assert app_tables(fresh_url) == ["alembic_version"]
    emptied = schema_shape(fresh_url)
    assert emptied["functions"] == [] and emptied["triggers"] == []
    assert emptied["schema_grants"] == []

    upgrade_to_head(fresh_url)
    assert schema_shape(fresh_url) == first


def test_every_revision_downgrades_one_step_and_back(fresh_url: str) -> None:
    """Each revision's downgrade undoes exactly that revision, not more, not less."""
    script = ScriptDirectory.from_config(alembic_config(fresh_url))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[-1] == head_revision()
    for revision, previous in zip(revisions, [None, *revisions[:-1]], strict=True):
        command.upgrade(alembic_config(fresh_url), revision)
        after_upgrade = schema_shape(fresh_url)
        downgrade_to(fresh_url, previous or "base")
        command.upgrade(alembic_config(fresh_url), revision)
        assert schema_shape(fresh_url) == after_upgrade, revision


def test_models_and_migrations_have_no_autogenerate_drift(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []
