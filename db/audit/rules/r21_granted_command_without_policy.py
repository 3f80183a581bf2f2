"""granted_command_without_policy: the runtime role may run a command no policy admits rows for.

With row-level security on, a command without a permissive policy sees or changes no row at
all: nothing leaks, but every request that needs it fails (a dropped `task_update_own` makes
every edit a 404). Usually a policy was dropped by hand. A table with no policy at all is
rls_enabled_no_policy's finding.
"""

from __future__ import annotations

from db.audit.rule import OWN_ROWS, Context, Hole, Rule, Severity

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s),
     commands(command, letter) AS (
         VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd'))
SELECT format('%%I.%%I', n.nspname, c.relname), c.relname, commands.command
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN runtime r
CROSS JOIN commands
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND c.relrowsecurity
  AND CASE commands.command
          WHEN 'DELETE' THEN has_table_privilege(r.oid, c.oid, 'DELETE')
          ELSE has_any_column_privilege(r.oid, c.oid, commands.command)
      END
  AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)
  AND NOT EXISTS (
      SELECT FROM pg_policy p
      WHERE p.polrelid = c.oid AND p.polpermissive AND p.polcmd IN (commands.letter, '*')
        AND (0::oid = ANY(p.polroles) OR r.oid = ANY(p.polroles)))
ORDER BY 1, array_position(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'], commands.command)
"""


def _create_policy(ctx: Context, table: str, name: str, command: str) -> str:
    policy = ctx.quote(f"{name}_{command.lower()}_own")[0]
    clauses = {
        "INSERT": f"WITH CHECK ({OWN_ROWS})",
        "UPDATE": f"USING ({OWN_ROWS}) WITH CHECK ({OWN_ROWS})",
    }.get(command, f"USING ({OWN_ROWS})")
    return f"CREATE POLICY {policy} ON {table} FOR {command} TO {ctx.role} {clauses};"


def command_finds_nothing(ctx: Context, table: str, name: str, command: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"{table} {command} for {ctx.role}",
        explanation=f"{ctx.role} holds {command} but no permissive policy admits a row for "
        f"it: every {command} by the service finds or changes nothing (no leak, a broken "
        "feature)",
        fix=_create_policy(ctx, table, name, command),
    )


RULE = Rule.per_row(
    "granted_command_without_policy",
    "granted command that no policy admits",
    SQL,
    command_finds_nothing,
)
