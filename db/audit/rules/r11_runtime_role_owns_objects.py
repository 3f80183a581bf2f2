"""runtime_role_owns_objects: the runtime role owns a table, the schema or the database.

An owner bypasses RLS unless it is FORCEd, and can always ALTER or DISABLE it, drop the
policies, or grant itself anything. The runtime role should own nothing; the migrator owns
every object. Owning the database makes it pg_database_owner, which owns schema public.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT 'TABLE', format('%%I.%%I', n.nspname, c.relname), c.relname = ANY(%(tables)s)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND c.relowner = (SELECT oid FROM runtime)
UNION ALL
SELECT 'SCHEMA', quote_ident(n.nspname), false
FROM pg_namespace n
WHERE n.nspname = %(schema)s AND n.nspowner = (SELECT oid FROM runtime)
UNION ALL
SELECT 'DATABASE', quote_ident(d.datname), false
FROM pg_database d
WHERE d.datname = current_database() AND d.datdba = (SELECT oid FROM runtime)
ORDER BY 1, 2
"""


def owner_can_rewrite_rls(ctx: Context, kind: str, name: str, tenant: bool) -> Hole:
    what = "a tenant table" if tenant else kind.lower()
    # ALTER TABLE ... OWNER TO works for views, sequences and foreign tables as well.
    return Hole(
        Severity.ERROR,
        object=f"{kind.lower()} {name}",
        explanation=f"the runtime role {ctx.role} owns {what}: an owner can bypass, "
        "disable or rewrite row-level security",
        fix=f"-- run as the migrator (owner) role\nALTER {kind} {name} OWNER TO CURRENT_USER;",
    )


RULE = Rule.per_row(
    "runtime_role_owns_objects",
    "runtime role owns a table, the schema or database",
    SQL,
    owner_can_rewrite_rls,
)
