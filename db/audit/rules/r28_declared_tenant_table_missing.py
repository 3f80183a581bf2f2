"""declared_tenant_table_missing: a tenant table db/catalog.py declares does not exist.

Nothing leaks from a table that is not there, but the service cannot work, and its policies
went with it (DROP TABLE ... CASCADE drops them silently). Usually a migration was rolled back
or the schema is not the one the service was built for.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.catalog import TENANT_TABLES

SQL = """
SELECT format('%%I.%%I', %(schema)s::text, declared)
FROM unnest(%(declared)s::text[]) AS declared
WHERE NOT EXISTS (
    SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relname = declared AND c.relkind IN ('r', 'p'))
ORDER BY 1
"""


def service_cannot_work(ctx: Context, table: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=table,
        explanation="the tenant table is missing, and with it its policies: the service "
        "cannot work against this schema",
        fix="-- run `tasks-api migrate` (it creates the table and applies policies/)",
    )


RULE = Rule.per_row(
    "declared_tenant_table_missing",
    "a declared tenant table does not exist",
    SQL,
    service_cannot_work,
    declared=list(TENANT_TABLES),
)
