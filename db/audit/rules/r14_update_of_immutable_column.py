"""update_of_immutable_column: the runtime role may UPDATE user_id, id or created_at.

`user_id` is the tenant key: updating it moves a row to another tenant (the policies' WITH CHECK
is then the only thing stopping it). `id` and `created_at` are history. policies/ grants UPDATE
only on the mutable columns; a table-level UPDATE grant covers every column, so the fix revokes
UPDATE and grants back the columns that may change.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import revoke_from_runtime_role

IMMUTABLE_COLUMNS = ("id", "user_id", "created_at")

SQL = """
WITH runtime AS (SELECT oid, rolsuper FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I', n.nspname, c.relname),
       array_agg(quote_ident(a.attname) ORDER BY a.attnum)
           FILTER (WHERE a.attname = ANY(%(immutable)s)) AS immutable,
       array_agg(quote_ident(a.attname) ORDER BY a.attnum)
           FILTER (WHERE a.attname <> ALL(%(immutable)s)) AS mutable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
CROSS JOIN runtime r
WHERE n.nspname = %(schema)s
  AND c.relname = ANY(%(tables)s)
  AND NOT r.rolsuper
  AND has_column_privilege(r.oid, c.oid, a.attnum, 'UPDATE')
GROUP BY c.oid, n.nspname, c.relname
HAVING bool_or(a.attname = ANY(%(immutable)s))
ORDER BY 1
"""


def rows_move_between_tenants(
    ctx: Context, table: str, immutable: list[str], mutable: list[str] | None
) -> Hole:
    return Hole(
        Severity.ERROR,
        object=f"{table} ({', '.join(immutable)})",
        explanation=f"the runtime role may UPDATE {', '.join(immutable)}: rows could be "
        "moved between tenants or have their history rewritten",
        fix=revoke_from_runtime_role(ctx, "UPDATE", table, keep=mutable or ()),
    )


RULE = Rule.per_row(
    "update_of_immutable_column",
    "runtime role may update user_id, id or created_at",
    SQL,
    rows_move_between_tenants,
    immutable=list(IMMUTABLE_COLUMNS),
)
