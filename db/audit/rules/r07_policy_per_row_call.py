"""policy_per_row_call: a policy calls current_setting() (or another function) once per row.

`user_id = current_setting('app.user_id', true)` makes PostgreSQL call the function for every
row it examines; `user_id = (select current_setting('app.user_id', true))` turns it into an
init plan evaluated once per statement, and lets the planner use an index on user_id. The SQL
reads the expressions; expressions.per_row_calls finds, in their parse trees (pglast), the calls
outside any subquery whose arguments hold no column (immutable functions are folded, so they
are exempt).
"""

from __future__ import annotations

from collections.abc import Iterator

from db.audit.expressions import per_row_calls, wrap_calls_in_select
from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import policy_clauses, policy_object

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       quote_ident(p.polname) AS policy,
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
ORDER BY 1, 2
"""

FUNCTIONS = """
SELECT DISTINCT proname FROM pg_proc WHERE proname = ANY(%(names)s) AND provolatile <> 'i'
"""


def called_for_every_row(ctx: Context) -> Iterator[Hole]:
    for table, policy, qual, with_check in ctx.rows(SQL):
        for clause, expression in policy_clauses(qual, with_check):
            calls = per_row_calls(expression)
            if not calls:
                continue
            names = {str(name) for (name,) in ctx.rows(FUNCTIONS, names=calls)}
            if not names:
                continue
            yield Hole(
                Severity.WARN,
                object=policy_object(policy, table),
                explanation=f"{clause} calls {', '.join(sorted(names))}() for every row; "
                "wrap it in (select ...) so it is evaluated once per statement",
                fix=f"ALTER POLICY {policy} ON {table} "
                f"{clause} ({wrap_calls_in_select(expression, names)});",
            )


RULE = Rule.from_holes(
    "policy_per_row_call", "policy evaluates a function per row", called_for_every_row
)
