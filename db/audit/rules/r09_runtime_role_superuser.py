"""runtime_role_superuser: the role every request runs as is a superuser.

Superusers bypass row-level security entirely (FORCE included) and every privilege check: the
database stops enforcing tenant isolation, leaving only the Python filters.
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, Severity

SQL = """
SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = %(role)s AND rolsuper
"""


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=Severity.ERROR,
            object=f"role {role}",
            explanation="the runtime role is a superuser: row-level security and grants never "
            "apply to it",
            fix=f"ALTER ROLE {role} NOSUPERUSER;",
        )
        for (role,) in ctx.rows(SQL)
    ]


RULE = Rule("runtime_role_superuser", "runtime role is a superuser", check)
