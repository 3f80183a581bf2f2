"""policy_exists_rls_disabled: a table has policies, but row-level security is off (splinter 0007).

Policies on a table without ENABLE ROW LEVEL SECURITY are stored and shown by `\\d` yet never
applied: whoever reviews the policy text believes a rule holds that PostgreSQL ignores, and
every role with a privilege on the table reaches every row.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import enable_rls

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), count(p.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_policy p ON p.polrelid = c.oid
WHERE n.nspname = %(schema)s AND NOT c.relrowsecurity
GROUP BY n.nspname, c.relname
ORDER BY 1
"""


def policies_never_applied(ctx: Context, table: str, policies: int) -> Hole:
    return Hole(
        Severity.ERROR,
        object=table,
        explanation=f"{policies} polic{'y' if policies == 1 else 'ies'} defined but row "
        "level security is disabled: none of them applies, every row is reachable",
        fix=enable_rls(table),
    )


RULE = Rule.per_row(
    "policy_exists_rls_disabled",
    "policies exist but row level security is off",
    SQL,
    policies_never_applied,
)
