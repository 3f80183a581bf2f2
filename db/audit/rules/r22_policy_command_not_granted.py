"""policy_command_not_granted: a policy for a command the runtime role may not run.

Policies only narrow what privileges allow. A DELETE policy without the DELETE privilege
means every delete fails with "permission denied": nothing leaks, but a revoked grant has
silently turned a feature off. (A policy for ALL covers commands that are rightly not granted,
so only policies for one command count.)
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import policy_object

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s),
     commands(command, letter) AS (
         VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd'))
SELECT format('%%I.%%I', n.nspname, c.relname), quote_ident(p.polname), commands.command
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN commands ON commands.letter = p.polcmd
CROSS JOIN runtime r
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND (0::oid = ANY(p.polroles) OR r.oid = ANY(p.polroles))
  AND NOT CASE commands.command
              WHEN 'DELETE' THEN has_table_privilege(r.oid, c.oid, 'DELETE')
              ELSE has_any_column_privilege(r.oid, c.oid, commands.command)
          END
ORDER BY 1, 2
"""


def command_denied(ctx: Context, table: str, policy: str, command: str) -> Hole:
    column_level = command in ("INSERT", "UPDATE")
    fix = f"GRANT {command} ON {table} TO {ctx.role};"
    if column_level:
        fix = (
            f"GRANT {command} (<the columns policies/10_privileges.sql lists>) "
            f"ON {table} TO {ctx.role};"
        )
    return Hole(
        Severity.WARN,
        object=policy_object(policy, table),
        explanation=f"the policy governs {command}, which {ctx.role} may not run: every "
        f"{command} by the service fails with permission denied (no leak, a broken "
        "feature)",
        fix=fix,
    )


RULE = Rule.per_row(
    "policy_command_not_granted",
    "policy for a command the runtime role lacks",
    SQL,
    command_denied,
)
