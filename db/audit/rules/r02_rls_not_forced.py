"""rls_not_forced: RLS is enabled but not FORCEd, so the table owner bypasses every policy.

The runtime role is not the owner, but a deployment that serves as the owner (or a role that
inherits it) would then see all tenants. FORCE makes the owner subject to the policies too.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, exposure_severity
from db.audit.rules._shapes import force_rls

SQL = """
WITH runtime AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I', n.nspname, c.relname) AS table_name,
       pg_get_userbyid(c.relowner) AS owner,
       c.relname = ANY(%(tables)s)
       OR coalesce(has_table_privilege((SELECT oid FROM runtime), c.oid,
                                       'SELECT,INSERT,UPDATE,DELETE'), false) AS exposed
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p')
  AND c.relrowsecurity
  AND NOT c.relforcerowsecurity
ORDER BY 1
"""


def owner_bypasses_policies(ctx: Context, table: str, owner: str, exposed: bool) -> Hole:
    return Hole(
        exposure_severity(exposed),
        object=table,
        explanation=f"row-level security is enabled but not forced: its owner {owner} "
        "(and any role inheriting it) bypasses every policy",
        fix=force_rls(table),
    )


RULE = Rule.per_row(
    "rls_not_forced", "RLS enabled but not forced on the owner", SQL, owner_bypasses_policies
)
