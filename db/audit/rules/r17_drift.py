"""drift: live policies, RLS flags, grants or role attributes differ from policies/.

policies/ is the text DBAs review; this rule proves the database enforces exactly that text. Its
engine is db.catalog: the declared side is computed by applying policies/ to scratch copies of
the tenant tables inside a rolled-back savepoint, and both sides are read from the same catalog
views. Every other rule looks for a known hole; this one catches any change nobody reviewed.
The auditing role must be able to create a schema (the migrator/owner role).
"""

from __future__ import annotations

from typing import Any

import psycopg

from db.audit.rule import AuditUnavailable, Context, Finding, Rule, Severity
from db.catalog import (
    POLICIES_DIR,
    ColumnGrant,
    Drift,
    PolicyRow,
    RlsFlags,
    RoleAttributes,
    TableGrant,
    declared_snapshot,
    policy_files,
    snapshot,
)
from db.errors import first_line

# The catalog queries live in db/catalog.py (_POLICIES, _RLS_FLAGS, _TABLE_GRANTS,
# _COLUMN_GRANTS, _ROLE, _MEMBERSHIPS): the same SQL reads the live and the declared side.


def _create_policy(ctx: Context, p: PolicyRow) -> str:
    name, table = ctx.quote(p.name)[0], ctx.qualified(p.table)
    roles = ", ".join("PUBLIC" if r == "public" else ctx.quote(r)[0] for r in p.roles)
    clauses = (f" USING ({p.using})" if p.using else "") + (
        f" WITH CHECK ({p.with_check})" if p.with_check else ""
    )
    return f"CREATE POLICY {name} ON {table} AS {p.permissive} FOR {p.command} TO {roles}{clauses};"


def _grant_fix(ctx: Context, live: tuple[Any, ...], declared: tuple[Any, ...]) -> str:
    row = (live or declared)[0]
    table = ctx.qualified(row.table)
    column = f" ({ctx.quote(row.column)[0]})" if isinstance(row, ColumnGrant) else ""
    grantee = "PUBLIC" if row.grantee == "PUBLIC" else ctx.quote(row.grantee)[0]
    target = f"{row.privilege}{column} ON {table}"
    if live and not declared:
        return f"REVOKE {target} FROM {grantee};"
    if declared and not live:
        option = " WITH GRANT OPTION" if declared[0].grantable else ""
        return f"GRANT {target} TO {grantee}{option};"
    if declared[0].grantable:
        return f"GRANT {target} TO {grantee} WITH GRANT OPTION;"
    return f"REVOKE GRANT OPTION FOR {target} FROM {grantee};"


def _role_fix(ctx: Context, declared: tuple[Any, ...]) -> str:
    if not declared:
        return "-- policies/00_roles.sql declares no attributes for this role"
    attributes: RoleAttributes = declared[0]
    words = [
        ("" if on else "NO") + option
        for option, on in zip(
            ("SUPERUSER", "BYPASSRLS", "LOGIN", "CREATEDB", "CREATEROLE", "REPLICATION"),
            attributes,
            strict=True,
        )
    ]
    return f"ALTER ROLE {ctx.quote(ctx.role)[0]} {' '.join(words)};"


def _finding(ctx: Context, drift: Drift) -> Finding:
    live, declared = drift.live, drift.declared
    role = ctx.quote(ctx.role)[0]
    if drift.part == "policies":
        row: PolicyRow = (live or declared)[0]
        obj = f"policy {row.name} on {ctx.qualified(row.table)}"
        fix = "\n".join(
            (
                [f"DROP POLICY {ctx.quote(row.name)[0]} ON {ctx.qualified(row.table)};"]
                if live
                else []
            )
            + ([_create_policy(ctx, declared[0])] if declared else [])
        )
        what = (
            "exists live but not in policies/"
            if not declared
            else "is declared in policies/ but missing live"
            if not live
            else "differs from its definition in policies/"
        )
    elif drift.part == "rls_flags":
        flags: RlsFlags = (declared or live)[0]
        table = ctx.qualified(flags.table)
        obj = table
        want = declared[0] if declared else RlsFlags(flags.table, True, True)
        fix = (
            f"ALTER TABLE {table} {'ENABLE' if want.enabled else 'DISABLE'} ROW LEVEL SECURITY;\n"
            f"ALTER TABLE {table} {'FORCE' if want.forced else 'NO FORCE'} ROW LEVEL SECURITY;"
        )
        what = (
            f"has row level security enabled={live[0].enabled if live else None}, "
            f"forced={live[0].forced if live else None}; policies/ declares "
            f"enabled={want.enabled}, forced={want.forced}"
        )
    elif drift.part in ("table_grants", "column_grants"):
        grant: TableGrant | ColumnGrant = (live or declared)[0]
        column = f".{grant.column}" if isinstance(grant, ColumnGrant) else ""
        obj = f"{ctx.qualified(grant.table)}{column} {grant.privilege} to {grant.grantee}"
        fix = _grant_fix(ctx, live, declared)
        what = (
            "is granted live but not in policies/"
            if not declared
            else "is declared in policies/ but not granted live"
            if not live
            else "differs in grant option from policies/"
        )
    elif drift.part == "memberships":
        other = ctx.quote((live or declared)[0])[0]
        obj = f"role {role} member of {other}"
        fix = f"REVOKE {other} FROM {role};" if live else f"GRANT {other} TO {role};"
        what = "exists live but not in policies/" if live else "is declared but missing live"
    else:
        obj = f"role {role}"
        fix = _role_fix(ctx, declared)
        what = (
            f"has attributes {live[0]._asdict() if live else 'none (role missing)'}; "
            f"policies/ declares {declared[0]._asdict() if declared else 'none'}"
        )
    return Finding(RULE.id, Severity.ERROR, obj, f"{what}", fix)


def check(ctx: Context) -> list[Finding]:
    if not policy_files():
        # Without the source there is nothing to compare with; reporting every live policy as
        # undeclared would be false, and silence would be worse.
        raise AuditUnavailable(f"no policies/*.sql found at {POLICIES_DIR}")
    live = snapshot(ctx.conn, ctx.schema, ctx.tenant_tables, ctx.role)
    try:
        declared = declared_snapshot(ctx.conn, ctx.schema, ctx.tenant_tables, ctx.role)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction):
        # The auditing role, or a read-only standby (whose catalog is its primary's, audited
        # there), cannot tell: an audit error, not a finding.
        raise
    except psycopg.Error as exc:
        message = first_line(exc)
        return [
            Finding(
                RULE.id,
                Severity.ERROR,
                f"schema {ctx.quote(ctx.schema)[0]}",
                f"policies/ cannot be applied to this database ({message}): its tables differ "
                "from what the policies were written for",
                "-- run `tasks-api migrate` (it applies policies/ through the migrations)",
            )
        ]
    return [_finding(ctx, drift) for drift in live.drift(declared)]


RULE = Rule("drift", "live policies, RLS flags, grants or role differ from policies/", check)
