"""What the live catalog enforces, and what `policies/` declares, as comparable snapshots.

The declared snapshot is computed by PostgreSQL itself: inside a transaction that is always rolled
back, the policy files are applied to an empty copy of each tenant table in a scratch schema and
the result is read back from the same catalog views. Comparing the two needs no SQL parser and
works on any database the migrator can connect to (Neon included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
RUNTIME_ROLE = "tasks_app"
TENANT_TABLES = ("task",)
_SCRATCH = "tasks_policy_scratch"

_POLICIES = """
SELECT tablename, policyname, permissive, roles::text[], cmd, qual, with_check
FROM pg_policies WHERE schemaname = %(schema)s AND tablename = ANY(%(tables)s)
ORDER BY tablename, policyname
"""
_RLS_FLAGS = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
ORDER BY c.relname
"""
_TABLE_GRANTS = """
SELECT c.relname, a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY 1, 2
"""
_COLUMN_GRANTS = """
SELECT c.relname, att.attname, a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped,
     aclexplode(att.attacl) a
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
ORDER BY 1, 2, 3
"""
_ROLE = """
SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreatedb, rolcreaterole, rolreplication
FROM pg_roles WHERE rolname = %(role)s
"""


@dataclass(frozen=True)
class SecuritySnapshot:
    policies: tuple[tuple[Any, ...], ...]
    rls_flags: tuple[tuple[Any, ...], ...]
    table_grants: tuple[tuple[Any, ...], ...]
    column_grants: tuple[tuple[Any, ...], ...]
    role: tuple[Any, ...] | None

    def differences(self, declared: SecuritySnapshot) -> list[str]:
        """Human-readable lines: what the live database has that `policies/` does not, and back."""
        lines: list[str] = []
        for part in ("policies", "rls_flags", "table_grants", "column_grants"):
            live, want = set(getattr(self, part)), set(getattr(declared, part))
            lines += [
                f"{part}: live has {row} but policies/ does not" for row in sorted(live - want)
            ]
            lines += [
                f"{part}: policies/ declares {row} but live lacks it" for row in sorted(want - live)
            ]
        if self.role != declared.role:
            lines.append(
                f"role {RUNTIME_ROLE}: live attributes {self.role} != declared {declared.role}"
            )
        return lines


def snapshot(
    conn: psycopg.Connection, schema: str = "public", tables: tuple[str, ...] = TENANT_TABLES
) -> SecuritySnapshot:
    params = {"schema": schema, "tables": list(tables), "role": RUNTIME_ROLE}

    def rows(query: str) -> tuple[tuple[Any, ...], ...]:
        return tuple(
            tuple(tuple(v) if isinstance(v, list) else v for v in r)
            for r in conn.execute(query, params).fetchall()
        )

    role = conn.execute(_ROLE, params).fetchone()
    return SecuritySnapshot(
        policies=rows(_POLICIES),
        rls_flags=rows(_RLS_FLAGS),
        table_grants=rows(_TABLE_GRANTS),
        column_grants=rows(_COLUMN_GRANTS),
        role=tuple(role) if role else None,
    )


def policy_files() -> list[Path]:
    return sorted(POLICIES_DIR.glob("*.sql"))


def declared_snapshot(
    conn: psycopg.Connection, schema: str = "public", tables: tuple[str, ...] = TENANT_TABLES
) -> SecuritySnapshot:
    """Apply policies/ to empty copies of the tenant tables in a scratch schema; roll back."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("declared_snapshot needs a connection outside any transaction")
    autocommit = conn.autocommit
    conn.autocommit = False
    try:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(_SCRATCH)))
        for table in tables:
            conn.execute(
                sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING ALL)").format(
                    sql.Identifier(_SCRATCH),
                    sql.Identifier(table),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            )
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(_SCRATCH)))
        for path in policy_files():
            conn.execute(path.read_text().encode())
        return snapshot(conn, _SCRATCH, tables)
    finally:
        conn.rollback()
        conn.autocommit = autocommit
