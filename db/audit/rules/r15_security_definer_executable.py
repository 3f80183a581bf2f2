"""security_definer_executable: a SECURITY DEFINER function the runtime role can execute.

Such a function runs as its owner, usually the migrator or a superuser: row-level security is
evaluated for the owner, not for the caller, so one careless function reads every tenant's
rows. New functions are executable by PUBLIC unless revoked, which is how this slips in.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
WITH runtime AS (SELECT oid, rolsuper FROM pg_roles WHERE rolname = %(role)s)
SELECT format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       pg_get_userbyid(p.proowner)
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN runtime r
WHERE p.prosecdef
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT r.rolsuper
  AND has_schema_privilege(r.oid, n.oid, 'USAGE')
  AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
ORDER BY 1
"""


def runs_as_its_owner(ctx: Context, function: str, owner: str) -> Hole:
    return Hole(
        Severity.ERROR,
        object=f"function {function}",
        explanation=f"SECURITY DEFINER function executable by the runtime role runs as "
        f"{owner}, outside the caller's row-level security",
        fix=f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC, {ctx.role};",
    )


RULE = Rule.per_row(
    "security_definer_executable",
    "SECURITY DEFINER function the runtime role can run",
    SQL,
    runs_as_its_owner,
)
