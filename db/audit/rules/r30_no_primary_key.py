"""no_primary_key: a table of the schema has no primary key (splinter 0004).

Without one, rows cannot be addressed one at a time (an update or delete "of this row" may hit
its duplicates, in any tenant's view), logical replication cannot ship UPDATE or DELETE, and
tools such as pg_repack refuse the table.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
  AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
ORDER BY 1
"""


def rows_not_addressable(ctx: Context, table: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=table,
        explanation="the table has no primary key: its rows cannot be addressed one by one "
        "and logical replication cannot carry its updates and deletes",
        fix=f"ALTER TABLE {table} ADD PRIMARY KEY (<its key columns>);",
    )


RULE = Rule.per_row("no_primary_key", "table without a primary key", SQL, rows_not_addressable)
