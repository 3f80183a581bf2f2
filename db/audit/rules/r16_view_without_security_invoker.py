"""view_without_security_invoker: a view over a tenant table that checks its owner, not the caller.

A view reads its tables with the privileges (and row-level security) of the view's owner unless
it is `security_invoker` (PostgreSQL 15+). Owned by the migrator, or by a role with BYPASSRLS as
on Neon, it shows every tenant's rows to whoever may select from it. A materialized view copies
the rows and has no row-level security at all, so the runtime role must not read one.
(Without security_invoker a view the runtime role cannot read is a warning: another role may.)
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT DISTINCT format('%%I.%%I', vn.nspname, v.relname), v.relkind::text,
       coalesce(has_table_privilege((SELECT oid FROM runtime), v.oid, 'SELECT'), false),
       t.relname
FROM pg_class v
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_rewrite rw ON rw.ev_class = v.oid
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                AND d.refclassid = 'pg_class'::regclass
JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE v.relkind IN ('v', 'm')
  AND tn.nspname = %(schema)s AND t.relname = ANY(%(tables)s)
  AND (CASE WHEN v.relkind = 'm'  -- no RLS at all: a finding only if the runtime role reads it
            THEN coalesce(has_table_privilege((SELECT oid FROM runtime), v.oid, 'SELECT'), false)
            ELSE NOT EXISTS (
        SELECT FROM pg_options_to_table(v.reloptions) o
        WHERE o.option_name = 'security_invoker'
          AND lower(o.option_value) IN ('true', 'on', '1', 'yes', 't', 'y')) END)
ORDER BY 1, 4
"""


def shows_rows_past_rls(ctx: Context, view: str, kind: str, readable: bool, table: str) -> Hole:
    severity = Severity.ERROR if readable else Severity.WARN
    if kind == "m":
        return Hole(
            severity,
            object=f"materialized view {view}",
            explanation=f"copies rows of tenant table {table} without row-level "
            "security" + ("; the runtime role can read it" if readable else ""),
            fix=f"REVOKE ALL ON {view} FROM {ctx.role}, PUBLIC;",
        )
    return Hole(
        severity,
        object=f"view {view}",
        explanation=f"reads tenant table {table} with its owner's rights, not the "
        "caller's (no security_invoker)"
        + ("; the runtime role can select from it" if readable else ""),
        fix=f"ALTER VIEW {view} SET (security_invoker = true);",
    )


RULE = Rule.per_row(
    "view_without_security_invoker",
    "view over a tenant table without security_invoker",
    SQL,
    shows_rows_past_rls,
)
