"""runtime_role_bypassrls: the role every request runs as has BYPASSRLS.

BYPASSRLS skips every policy on every table, FORCE included. Neon's default role has it, which
is exactly why requests switch to a runtime role that must not.
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, Severity

SQL = """
SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = %(role)s AND rolbypassrls
"""


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=Severity.ERROR,
            object=f"role {role}",
            explanation="the runtime role has BYPASSRLS: no policy applies to it",
            fix=f"ALTER ROLE {role} NOBYPASSRLS;",
        )
        for (role,) in ctx.rows(SQL)
    ]


RULE = Rule("runtime_role_bypassrls", "runtime role has BYPASSRLS", check)
