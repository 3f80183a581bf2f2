"""policy_for_public: a policy that applies TO PUBLIC, i.e. to every role, present and future.

A policy should name the role it is for (policies/ scope everything `TO tasks_app`): a PUBLIC
policy silently extends to reporting roles, the owner under FORCE, and roles created later.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import policy_object

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name, quote_ident(p.polname)
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND 0::oid = ANY(p.polroles)
ORDER BY 1, 2
"""


def policy_for_every_role(ctx: Context, table: str, policy: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=policy_object(policy, table),
        explanation="the policy applies TO PUBLIC (every role) instead of naming the role "
        "it is meant for",
        fix=f"ALTER POLICY {policy} ON {table} TO {ctx.role};",
    )


RULE = Rule.per_row(
    "policy_for_public", "policy for PUBLIC instead of a named role", SQL, policy_for_every_role
)
