"""policy_always_true: a permissive policy whose USING or WITH CHECK does not restrict rows.

Permissive policies are OR-ed together, so one `USING (true)` opens the whole table to the roles
it names, whatever the other policies say. Three ways to get there, all caught:
* a constant that is true (`true`, `1 = 1`): its parse tree (pglast, db.audit.expressions)
  holds no column, function or subquery, and PostgreSQL evaluates it;
* a condition PostgreSQL's planner folds to true (`user_id = ... OR true`): planned against an
  empty temporary copy of the table, the scan keeps no filter;
* a condition that never looks at the row (`current_setting('app.user_id', true) IS NOT NULL`):
  whenever it holds, every tenant's rows pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
from psycopg import sql

from db.audit.expressions import is_row_independent_constant, references_row
from db.audit.rule import OWN_ROWS, Context, Hole, Rule, Severity
from db.audit.rules._shapes import policy_clauses, policy_object

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name, c.relname,
       quote_ident(p.polname) AS policy,
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id'
                 AND a.attnum > 0 AND NOT a.attisdropped) AS has_user_id
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND p.polpermissive
ORDER BY 1, 3
"""

PROBE = "CREATE TEMP TABLE tasks_audit_probe (LIKE {table}) ON COMMIT DROP"
EXPLAIN = "EXPLAIN (FORMAT JSON, COSTS OFF) SELECT FROM pg_temp.tasks_audit_probe WHERE ({expr})"


def _constant_true(ctx: Context, expression: str) -> bool:
    # Only constants and operators reach this point: evaluating them runs no user code.
    row = ctx.conn.execute(sql.SQL("SELECT ({}) IS TRUE").format(sql.SQL(expression))).fetchone()
    return bool(row and row[0])


def _planner_folds_to_true(ctx: Context, table: str, expression: str) -> bool:
    """Plan the condition on an empty copy (no RLS, nothing executed): no filter left = true."""
    try:
        with ctx.conn.transaction(force_rollback=True):
            ctx.conn.execute(sql.SQL(PROBE).format(table=sql.SQL(table)))
            row = ctx.conn.execute(sql.SQL(EXPLAIN).format(expr=sql.SQL(expression))).fetchone()
    except psycopg.Error:
        return False  # no TEMP privilege, or an expression that names its table: no verdict
    plan = (json.loads(row[0]) if isinstance(row[0], str) else row[0])[0]["Plan"] if row else {}
    return plan.get("Node Type") == "Seq Scan" and not {"Filter", "One-Time Filter"} & set(plan)


def _verdict(ctx: Context, table: str, expression: str) -> str | None:
    if is_row_independent_constant(expression):
        return "is true for every row" if _constant_true(ctx, expression) else None
    if not references_row(expression):
        return "never looks at the row: whenever it holds, every tenant's rows pass"
    if _planner_folds_to_true(ctx, table, expression):
        return "is true for every row (PostgreSQL simplifies it to true)"
    return None


def opens_across_tenants(ctx: Context) -> Iterator[Hole]:
    for table, name, policy, qual, with_check, has_user_id in ctx.rows(SQL):
        for clause, expression in policy_clauses(qual, with_check):
            verdict = _verdict(ctx, table, expression)
            if verdict is None:
                continue
            constant = verdict.startswith("is true")
            yield Hole(
                Severity.ERROR if constant or name in ctx.tenant_tables else Severity.WARN,
                object=policy_object(policy, table),
                explanation=f"permissive policy with {clause} ({expression}) {verdict}: "
                "it opens the table across tenants",
                fix=f"ALTER POLICY {policy} ON {table} {clause} ({OWN_ROWS});"
                if has_user_id
                else f"DROP POLICY {policy} ON {table};",
            )


RULE = Rule.from_holes(
    "policy_always_true", "permissive policy whose condition is always true", opens_across_tenants
)
