"""What the live catalog enforces, and what `policies/` declares, as comparable snapshots.

The declared snapshot is computed by PostgreSQL itself: inside a savepoint that is always rolled
back, the policy files are applied to an empty copy of each tenant table in a scratch schema and
the result is read back from the same catalog views. Comparing the two needs no SQL parser and
works on any database the migrator can connect to (Neon included).

Roles are the exception: they are cluster-wide, so the live `tasks_app` cannot be recreated in a
scratch copy. Its declared attributes and memberships are read from the `CREATE ROLE` and
`GRANT role TO tasks_app` statements of policies/00_roles.sql instead.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from db.identity import RUNTIME_ROLE

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
TENANT_TABLES = ("task", "idempotency_key")
ROLES_FILE = "00_roles.sql"
_SCRATCH_PREFIX = "tasks_policy_scratch"


class PolicyRow(NamedTuple):
    table: str
    name: str
    permissive: str
    roles: tuple[str, ...]
    command: str
    using: str | None
    with_check: str | None


class RlsFlags(NamedTuple):
    table: str
    enabled: bool
    forced: bool


class TableGrant(NamedTuple):
    table: str
    grantee: str
    privilege: str
    grantable: bool


class ColumnGrant(NamedTuple):
    table: str
    column: str
    grantee: str
    privilege: str
    grantable: bool


class RoleAttributes(NamedTuple):
    superuser: bool
    bypassrls: bool
    login: bool
    createdb: bool
    createrole: bool
    replication: bool


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
# Grants to the runtime role and to PUBLIC (which the runtime role holds as well).
_TABLE_GRANTS = """
SELECT c.relname, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND (a.grantee = 0 OR a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(role)s))
ORDER BY 1, 2, 3
"""
_COLUMN_GRANTS = """
SELECT c.relname, att.attname,
       CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped,
     aclexplode(att.attacl) a
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND (a.grantee = 0 OR a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(role)s))
ORDER BY 1, 2, 3, 4
"""
_ROLE = """
SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreatedb, rolcreaterole, rolreplication
FROM pg_roles WHERE rolname = %(role)s
"""
_MEMBERSHIPS = """
SELECT DISTINCT pg_get_userbyid(m.roleid)
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
WHERE r.rolname = %(role)s
ORDER BY 1
"""
# Tenant tables are found, not listed: any table of the schema with a user_id column, plus the
# tables declared above (which must be tenant tables even if a column was renamed).
_TENANT_TABLES = """
SELECT c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
  AND (c.relname = ANY(%(declared)s)
       OR EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id'
                    AND a.attnum > 0 AND NOT a.attisdropped))
ORDER BY 1
"""

_PARTS = ("policies", "rls_flags", "table_grants", "column_grants", "memberships")


@dataclass(frozen=True)
class Drift:
    """One object whose live state differs from what policies/ declares."""

    part: str
    live: tuple[Any, ...]
    declared: tuple[Any, ...]

    def describe(self) -> str:
        if not self.declared:
            return "; ".join(
                f"{self.part}: live has {row} but policies/ does not" for row in self.live
            )
        if not self.live:
            return "; ".join(
                f"{self.part}: policies/ declares {row} but live lacks it" for row in self.declared
            )
        return f"{self.part}: live {self.live} differs from declared {self.declared}"


def _key(part: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """What names one object in each part, so a changed object is one drift, not two."""
    if part in ("policies", "table_grants"):
        return tuple(row[:3]) if part == "table_grants" else tuple(row[:2])
    if part == "column_grants":
        return tuple(row[:4])
    if part == "rls_flags":
        return (row[0],)
    return (row,)


@dataclass(frozen=True)
class SecuritySnapshot:
    policies: tuple[PolicyRow, ...]
    rls_flags: tuple[RlsFlags, ...]
    table_grants: tuple[TableGrant, ...]
    column_grants: tuple[ColumnGrant, ...]
    role: RoleAttributes | None
    memberships: tuple[str, ...] = ()

    def drift(self, declared: SecuritySnapshot) -> list[Drift]:
        """Every object that differs, grouped by what names it (policy, grant, table, role)."""
        drifts: list[Drift] = []
        for part in _PARTS:
            live_rows: dict[tuple[Any, ...], list[Any]] = {}
            declared_rows: dict[tuple[Any, ...], list[Any]] = {}
            for row in getattr(self, part):
                live_rows.setdefault(_key(part, row), []).append(row)
            for row in getattr(declared, part):
                declared_rows.setdefault(_key(part, row), []).append(row)
            for key in sorted(live_rows.keys() | declared_rows.keys(), key=repr):
                live, want = live_rows.get(key, []), declared_rows.get(key, [])
                if sorted(live, key=repr) != sorted(want, key=repr):
                    drifts.append(Drift(part, tuple(live), tuple(want)))
        if self.role != declared.role:
            drifts.append(
                Drift(
                    "role",
                    (self.role,) if self.role else (),
                    (declared.role,) if declared.role else (),
                )
            )
        return drifts

    def differences(self, declared: SecuritySnapshot) -> list[str]:
        """Human-readable lines: what the live database has that `policies/` does not, and back."""
        return [drift.describe() for drift in self.drift(declared)]


def tenant_tables(conn: psycopg.Connection[Any], schema: str = "public") -> tuple[str, ...]:
    rows = conn.execute(_TENANT_TABLES, {"schema": schema, "declared": list(TENANT_TABLES)})
    return tuple(r[0] for r in rows.fetchall())


def snapshot(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    tables: tuple[str, ...] = TENANT_TABLES,
    role: str = RUNTIME_ROLE,
) -> SecuritySnapshot:
    params = {"schema": schema, "tables": list(tables), "role": role}

    def rows(query: str) -> list[tuple[Any, ...]]:
        return [
            tuple(tuple(v) if isinstance(v, list) else v for v in r)
            for r in conn.execute(query, params).fetchall()
        ]

    attributes = conn.execute(_ROLE, params).fetchone()
    return SecuritySnapshot(
        policies=tuple(PolicyRow(*r) for r in rows(_POLICIES)),
        rls_flags=tuple(RlsFlags(*r) for r in rows(_RLS_FLAGS)),
        table_grants=tuple(TableGrant(*r) for r in rows(_TABLE_GRANTS)),
        column_grants=tuple(ColumnGrant(*r) for r in rows(_COLUMN_GRANTS)),
        role=RoleAttributes(*attributes) if attributes else None,
        memberships=tuple(r[0] for r in rows(_MEMBERSHIPS)),
    )


def policy_files() -> list[Path]:
    return sorted(POLICIES_DIR.glob("*.sql"))


def declared_policy_names() -> frozenset[str]:
    """Names of the policies policies/ creates (for advice on which of several to keep)."""
    pattern = re.compile(r"CREATE POLICY (\w+)", re.I)
    return frozenset(
        name for path in policy_files() for name in pattern.findall(path.read_text())
    )


def _statements(text: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*", "", text)
    return [" ".join(s.split()) for s in without_comments.split(";") if s.strip()]


_ROLE_OPTIONS = {
    "SUPERUSER": "superuser",
    "BYPASSRLS": "bypassrls",
    "LOGIN": "login",
    "CREATEDB": "createdb",
    "CREATEROLE": "createrole",
    "REPLICATION": "replication",
}


def declared_role(role: str = RUNTIME_ROLE) -> tuple[RoleAttributes | None, tuple[str, ...]]:
    """The runtime role's attributes and memberships as policies/00_roles.sql states them.

    CREATE ROLE defaults every attribute to its NO form, so only the keywords written count.
    """
    text = (POLICIES_DIR / ROLES_FILE).read_text()
    attributes: RoleAttributes | None = None
    memberships: list[str] = []
    create = re.compile(rf"CREATE ROLE {re.escape(role)}\b(?: WITH)?(?P<options>(?: \w+)*)", re.I)
    grant = re.compile(rf"^GRANT (?P<roles>[\w, ]+?) TO {re.escape(role)}$", re.I)
    for statement in _statements(text):
        for match in create.finditer(statement):
            words = {w.upper() for w in match.group("options").split()}
            attributes = RoleAttributes(
                **{field: option in words for option, field in _ROLE_OPTIONS.items()}
            )
        found = grant.match(statement)
        if found and " ON " not in f" {found.group('roles').upper()} ":
            memberships += [r.strip() for r in found.group("roles").split(",")]
    return attributes, tuple(sorted(memberships))


def declared_snapshot(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    tables: tuple[str, ...] = TENANT_TABLES,
    role: str = RUNTIME_ROLE,
) -> SecuritySnapshot:
    """Apply policies/ to empty copies of the tenant tables in a scratch schema; roll back.

    Works inside or outside a transaction (a savepoint when one is open), so an audit can judge
    uncommitted changes, and nothing it does survives.
    """
    scratch = f"{_SCRATCH_PREFIX}_{secrets.token_hex(4)}"
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(scratch)))
        for table in tables:
            conn.execute(
                sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING ALL)").format(
                    sql.Identifier(scratch),
                    sql.Identifier(table),
                    sql.Identifier(schema),
                    sql.Identifier(table),
                )
            )
        conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(scratch)))
        for path in policy_files():
            conn.execute(path.read_text().encode())
        applied = snapshot(conn, scratch, tables, role)
    attributes, memberships = declared_role(role)
    return SecuritySnapshot(
        policies=applied.policies,
        rls_flags=applied.rls_flags,
        table_grants=applied.table_grants,
        column_grants=applied.column_grants,
        role=attributes,
        memberships=memberships,
    )
