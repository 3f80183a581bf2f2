"""rls_not_enabled: a table of the application schema without row-level security.

Without RLS the policies do not exist as far as PostgreSQL is concerned: any role with SELECT
sees every tenant's rows, and the Python filters are the only guard left. Alembic's own
bookkeeping table is exempt (it holds no tenant data and the runtime role cannot reach it).
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, exposure_severity

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       c.relname = ANY(%(tables)s)
       OR coalesce(has_table_privilege((SELECT oid FROM runtime), c.oid,
                                       'SELECT,INSERT,UPDATE,DELETE,TRUNCATE'), false)
       OR coalesce(has_any_column_privilege((SELECT oid FROM runtime), c.oid,
                                            'SELECT,INSERT,UPDATE'), false) AS exposed
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p')
  AND c.relname <> 'alembic_version'
  AND NOT c.relrowsecurity
ORDER BY 1
"""


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=exposure_severity(exposed),
            object=table,
            explanation="row-level security is not enabled: its policies are ignored and "
            "anyone with SELECT sees every tenant's rows",
            fix=f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;",
        )
        for table, exposed in ctx.rows(SQL)
    ]


RULE = Rule("rls_not_enabled", "table without row-level security enabled", check)
