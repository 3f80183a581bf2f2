"""rls_not_enabled: a table of the application schema without row-level security.

Without RLS the policies do not exist as far as PostgreSQL is concerned: any role with SELECT
sees every tenant's rows, and the Python filters are the only guard left. Alembic's own
bookkeeping table is exempt (it holds no tenant data and the runtime role cannot reach it).
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, exposure_severity
from db.audit.rules._shapes import enable_rls

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


def policies_ignored(ctx: Context, table: str, exposed: bool) -> Hole:
    return Hole(
        exposure_severity(exposed),
        object=table,
        explanation="row-level security is not enabled: its policies are ignored and "
        "anyone with SELECT sees every tenant's rows",
        fix=enable_rls(table),
    )


RULE = Rule.per_row(
    "rls_not_enabled", "table without row-level security enabled", SQL, policies_ignored
)
