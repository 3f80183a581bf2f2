"""insert_of_server_generated_column: the runtime role may choose ids or timestamps on INSERT.

policies/ lets the table fill in `id` and the timestamps. A client that may choose a key can
probe for other tenants' keys: inserting an id another user's row holds fails with a unique
violation, which tells the caller that row exists (ERROR). A client that may choose a timestamp
can backdate rows or make an idempotency key outlive its expiry (WARN). Server-generated means
a column with a default that is part of a unique index, or of a date/time type.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import revoke_from_runtime_role

SQL = """
WITH runtime AS (SELECT oid, rolsuper FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I', n.nspname, c.relname), quote_ident(a.attname),
       EXISTS (SELECT FROM pg_index i
               WHERE i.indrelid = c.oid AND i.indisunique AND a.attnum = ANY(i.indkey)) AS key,
       ARRAY(SELECT quote_ident(o.attname) FROM pg_attribute o
             WHERE o.attrelid = c.oid AND o.attnum > 0 AND NOT o.attisdropped
               AND o.attnum <> a.attnum
               AND has_column_privilege(r.oid, c.oid, o.attnum, 'INSERT')
             ORDER BY o.attnum) AS others
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
CROSS JOIN runtime r
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND NOT r.rolsuper
  AND a.atthasdef
  AND has_column_privilege(r.oid, c.oid, a.attnum, 'INSERT')
  AND (t.typcategory = 'D'
       OR EXISTS (SELECT FROM pg_index i
                  WHERE i.indrelid = c.oid AND i.indisunique AND a.attnum = ANY(i.indkey)))
ORDER BY 1, 2
"""


def caller_chooses_generated_value(
    ctx: Context, table: str, column: str, key: bool, others: list[str]
) -> Hole:
    return Hole(
        Severity.ERROR if key else Severity.WARN,
        object=f"{table} ({column})",
        explanation=f"the runtime role may INSERT {column}, which the table generates: "
        + (
            "a caller can choose keys and learn from a unique violation that another "
            "tenant's row holds one"
            if key
            else "a caller can backdate rows or extend their lifetime"
        ),
        fix=revoke_from_runtime_role(ctx, "INSERT", table, keep=others),
    )


RULE = Rule.per_row(
    "insert_of_server_generated_column",
    "runtime role may insert keys or timestamps the table generates",
    SQL,
    caller_chooses_generated_value,
)
