"""runtime_role_can_escalate: tasks_app has CREATEROLE, REPLICATION or CREATEDB.

CREATEROLE lets a role create roles and (before PostgreSQL 16, for any non-superuser role)
grant itself their membership, the owner's included: then RLS no longer binds it. REPLICATION
streams the write-ahead log, every tenant's rows with no policy in the way. Both are ERRORs.
CREATEDB lets it create databases it owns: no tenant data, but not what a request needs (WARN).
"""

from __future__ import annotations

from collections.abc import Iterator

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import drop_role_attribute

SQL = """
SELECT quote_ident(rolname), rolcreaterole, rolreplication, rolcreatedb
FROM pg_roles WHERE rolname = %(role)s
"""

_LETS_THROUGH = {
    "CREATEROLE": (
        Severity.ERROR,
        "can create roles and grant their memberships, up to the "
        "owner of the tenant tables, which row-level security does not bind",
    ),
    "REPLICATION": (
        Severity.ERROR,
        "can stream the write-ahead log: every tenant's rows, past every policy",
    ),
    "CREATEDB": (Severity.WARN, "can create databases it owns, which no request needs"),
}


def escapes_its_role(ctx: Context) -> Iterator[Hole]:
    for role, createrole, replication, createdb in ctx.rows(SQL):
        held = {"CREATEROLE": createrole, "REPLICATION": replication, "CREATEDB": createdb}
        for attribute, on in held.items():
            if not on:
                continue
            severity, what = _LETS_THROUGH[attribute]
            yield Hole(
                severity,
                object=f"role {role} {attribute}",
                explanation=f"the runtime role {what}",
                fix=drop_role_attribute(role, attribute),
            )


RULE = Rule.from_holes(
    "runtime_role_can_escalate",
    "runtime role has CREATEROLE, REPLICATION or CREATEDB",
    escapes_its_role,
)
