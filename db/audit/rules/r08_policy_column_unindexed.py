"""policy_column_unindexed: a column a policy filters on leads no index.

Every query on the table carries the policy's condition; without an index leading with that
column (user_id), each request scans every tenant's rows. PostgreSQL records the columns a
policy uses in pg_depend, so no expression parsing is needed.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
SELECT DISTINCT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       quote_ident(a.attname) AS column_name,
       quote_ident(c.relname || '_' || a.attname || '_idx') AS index_name
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
                AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
                AND d.refobjsubid > 0
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
WHERE n.nspname = %(schema)s
  AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)
ORDER BY 1, 2
"""


def every_request_scans_all_tenants(ctx: Context, table: str, column: str, index: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"{table}.{column}",
        explanation=f"policies filter on {column} but no index leads with it: every "
        "request scans all tenants' rows",
        fix=f"CREATE INDEX CONCURRENTLY {index} ON {table} ({column});",
    )


RULE = Rule.per_row(
    "policy_column_unindexed",
    "policy column without an index leading with it",
    SQL,
    every_request_scans_all_tenants,
)
