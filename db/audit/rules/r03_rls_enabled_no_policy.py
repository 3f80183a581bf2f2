"""rls_enabled_no_policy: RLS is on but the table has no policy at all.

That is default deny for everyone but the owner: safe, yet the service cannot work, and it
usually means the policies were dropped (or never applied) by hand. On a tenant table the fix
recreates the one-policy-per-command shape of policies/*.sql.
"""

from __future__ import annotations

from db.audit.rule import OWN_ROWS, Context, Hole, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       c.relname,
       c.relname = ANY(%(tables)s) AS tenant
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p')
  AND c.relrowsecurity
  AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)
ORDER BY 1
"""


def _tenant_policies(table: str, name: str, role: str) -> str:
    return "\n".join(
        [
            f"CREATE POLICY {name}_select_own ON {table} FOR SELECT TO {role} USING ({OWN_ROWS});",
            f"CREATE POLICY {name}_insert_own ON {table} FOR INSERT TO {role} "
            f"WITH CHECK ({OWN_ROWS});",
            f"CREATE POLICY {name}_update_own ON {table} FOR UPDATE TO {role} "
            f"USING ({OWN_ROWS}) WITH CHECK ({OWN_ROWS});",
            f"CREATE POLICY {name}_delete_own ON {table} FOR DELETE TO {role} USING ({OWN_ROWS});",
        ]
    )


def every_row_denied(ctx: Context, table: str, name: str, tenant: bool) -> Hole:
    if tenant:
        fix = (
            f"-- apply policies/{name}.sql, or for the commands the service uses:\n"
            + _tenant_policies(table, name, ctx.role)
        )
    else:
        fix = f"-- write the policies for {table} in policies/ and apply them"
    return Hole(
        Severity.ERROR if tenant else Severity.INFO,
        object=table,
        explanation="row-level security is enabled but no policy exists: every row is "
        "denied to every role except the owner",
        fix=fix,
    )


RULE = Rule.per_row(
    "rls_enabled_no_policy", "RLS enabled on a table without any policy", SQL, every_row_denied
)
