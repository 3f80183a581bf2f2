"""policy_always_true: a permissive policy whose USING or WITH CHECK holds for every row.

Permissive policies are OR-ed together, so one `USING (true)` (or `1 = 1`) opens the whole table
to the roles it names, whatever the other policies say. Detected from the stored expression
tree: no column, parameter, function or subquery in it, and PostgreSQL evaluates it to true.
"""

from __future__ import annotations

from psycopg import sql

from db.audit.expressions import is_row_independent_constant
from db.audit.rule import OWN_ROWS, Context, Finding, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       quote_ident(p.polname) AS policy,
       p.polqual::text, pg_get_expr(p.polqual, p.polrelid),
       p.polwithcheck::text, pg_get_expr(p.polwithcheck, p.polrelid),
       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id'
                 AND a.attnum > 0 AND NOT a.attisdropped) AS has_user_id
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND p.polpermissive
ORDER BY 1, 2
"""


def _always_true(ctx: Context, tree: str | None, expression: str | None) -> bool:
    if expression is None or not is_row_independent_constant(tree):
        return False
    # Only constants and operators reach this point: evaluating them runs no user code.
    row = ctx.conn.execute(sql.SQL("SELECT ({}) IS TRUE").format(sql.SQL(expression))).fetchone()
    return bool(row and row[0])


def check(ctx: Context) -> list[Finding]:
    findings = []
    for table, policy, qual_tree, qual, check_tree, with_check, has_user_id in ctx.rows(SQL):
        for clause, tree, expression in (
            ("USING", qual_tree, qual),
            ("WITH CHECK", check_tree, with_check),
        ):
            if not _always_true(ctx, tree, expression):
                continue
            fix = (
                f"ALTER POLICY {policy} ON {table} {clause} ({OWN_ROWS});"
                if has_user_id
                else f"DROP POLICY {policy} ON {table};"
            )
            findings.append(
                Finding(
                    rule=RULE.id,
                    severity=Severity.ERROR,
                    object=f"policy {policy} on {table}",
                    explanation=f"permissive policy with {clause} ({expression}) is true for "
                    "every row: it opens the table to every tenant",
                    fix=fix,
                )
            )
    return findings


RULE = Rule("policy_always_true", "permissive policy whose condition is always true", check)
