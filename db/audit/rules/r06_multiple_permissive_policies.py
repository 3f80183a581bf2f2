"""multiple_permissive_policies: two or more permissive policies for one role and command.

Permissive policies are OR-ed: each extra one widens what the role may see or write, and each
is evaluated for every row. policies/ keeps one policy per command; a second one is usually a
forgotten experiment (or a backdoor). A policy FOR ALL counts for every command and a PUBLIC
policy for every role.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.catalog import declared_policy_names

SQL = """
WITH policy AS (
    SELECT c.oid AS relid, format('%%I.%%I', n.nspname, c.relname) AS table_name,
           p.polname, p.polroles,
           CASE p.polcmd WHEN 'r' THEN ARRAY['SELECT'] WHEN 'a' THEN ARRAY['INSERT']
                         WHEN 'w' THEN ARRAY['UPDATE'] WHEN 'd' THEN ARRAY['DELETE']
                         ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] END AS commands
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND p.polpermissive
),
judged_role AS (
    SELECT oid, rolname FROM pg_roles
    WHERE rolname = %(role)s OR oid IN (SELECT unnest(polroles) FROM policy)
)
SELECT p.table_name, r.rolname, command, array_agg(quote_ident(p.polname) ORDER BY p.polname)
FROM policy p
CROSS JOIN judged_role r
CROSS JOIN LATERAL unnest(p.commands) AS command
WHERE p.polroles && ARRAY[r.oid, 0::oid]
GROUP BY 1, 2, 3
HAVING count(*) > 1
ORDER BY 1, 2, 3
"""


def _redundant(policies: list[str]) -> list[str]:
    """The ones to drop: those policies/ does not declare, else all but the first."""
    declared = declared_policy_names()
    undeclared = [p for p in policies if p.strip('"') not in declared]
    return undeclared if 0 < len(undeclared) < len(policies) else policies[1:]


def each_policy_widens_access(
    ctx: Context, table: str, role: str, command: str, policies: list[str]
) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"{table} {command} for {role}",
        explanation=f"{len(policies)} permissive policies ({', '.join(policies)}) apply "
        f"to {role} for {command}; they are OR-ed, so each one widens access",
        fix="-- keep one permissive policy per command and role, as policies/ does:\n"
        + "\n".join(f"DROP POLICY {p} ON {table};" for p in _redundant(policies)),
    )


RULE = Rule.per_row(
    "multiple_permissive_policies",
    "several permissive policies for one role and command",
    SQL,
    each_policy_widens_access,
)
