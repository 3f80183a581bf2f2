"""What the identity rules (r18..r20) share: the policies they judge and the fix they offer.

Only permissive policies that apply to the runtime role (by name or through PUBLIC) on tenant
tables can let rows through for a request; restrictive policies only narrow what those admit.
For UPDATE without a WITH CHECK, PostgreSQL checks new rows with USING, so USING is judged once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from db.audit.identity import IdentityVerdict, judge_identity
from db.audit.rule import OWN_ROWS, Context

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), quote_ident(p.polname),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND p.polpermissive
  AND (0::oid = ANY(p.polroles)
       OR (SELECT oid FROM pg_roles WHERE rolname = %(role)s) = ANY(p.polroles))
ORDER BY 1, 2
"""


class JudgedClause(NamedTuple):
    table: str
    policy: str
    clause: str  # "USING" or "WITH CHECK"
    expression: str
    verdict: IdentityVerdict

    @property
    def object(self) -> str:
        return f"policy {self.policy} on {self.table}"

    @property
    def fix(self) -> str:
        return f"ALTER POLICY {self.policy} ON {self.table} {self.clause} ({OWN_ROWS});"


def judged_clauses(ctx: Context) -> Iterator[JudgedClause]:
    for table, policy, using, with_check in ctx.rows(SQL):
        for clause, expression in (("USING", using), ("WITH CHECK", with_check)):
            if expression is not None:
                yield JudgedClause(table, policy, clause, expression, judge_identity(expression))
