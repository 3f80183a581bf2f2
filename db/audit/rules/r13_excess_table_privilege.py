"""excess_table_privilege: the runtime role holds TRUNCATE, REFERENCES or TRIGGER on a table.

TRUNCATE empties a table without consulting row-level security (every tenant's rows at once);
TRIGGER lets the role attach code that runs on other tenants' writes; REFERENCES lets it probe
which keys exist through foreign keys. The service needs none of them. Privileges are checked
as effective privileges: granted directly, to PUBLIC, or through a role it belongs to.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity
from db.audit.rules._shapes import revoke_from_runtime_role

SQL = """
WITH runtime AS (SELECT oid, rolsuper FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I', n.nspname, c.relname), privilege
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN runtime r
CROSS JOIN unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS privilege
WHERE n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT r.rolsuper  -- a superuser holds everything; runtime_role_superuser reports that
  AND has_table_privilege(r.oid, c.oid, privilege)
ORDER BY 1, 2
"""


def privilege_beyond_the_service(ctx: Context, table: str, privilege: str) -> Hole:
    return Hole(
        Severity.ERROR,
        object=f"{table} {privilege} to {ctx.role}",
        explanation=f"the runtime role holds {privilege}, which the service never needs"
        + (" and which ignores row-level security" if privilege == "TRUNCATE" else ""),
        fix=revoke_from_runtime_role(ctx, privilege, table),
    )


RULE = Rule.per_row(
    "excess_table_privilege",
    "runtime role holds TRUNCATE, REFERENCES or TRIGGER",
    SQL,
    privilege_beyond_the_service,
)
