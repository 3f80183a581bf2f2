"""policy_exists_rls_disabled: a table has policies, but row-level security is off (splinter 0007).

Policies on a table without ENABLE ROW LEVEL SECURITY are stored and shown by `\\d` yet never
applied: whoever reviews the policy text believes a rule holds that PostgreSQL ignores, and
every role with a privilege on the table reaches every row.
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), count(p.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_policy p ON p.polrelid = c.oid
WHERE n.nspname = %(schema)s AND NOT c.relrowsecurity
GROUP BY n.nspname, c.relname
ORDER BY 1
"""


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=Severity.ERROR,
            object=table,
            explanation=f"{policies} polic{'y' if policies == 1 else 'ies'} defined but row "
            "level security is disabled: none of them applies, every row is reachable",
            fix=f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY;",
        )
        for table, policies in ctx.rows(SQL)
    ]


RULE = Rule("policy_exists_rls_disabled", "policies exist but row level security is off", check)
