"""runtime_role_member_of_privileged: the runtime role belongs, directly or through other roles,
to a role that is a superuser, has BYPASSRLS or owns a tenant table.

Membership gives its privileges (inherited, or one SET ROLE away), so the runtime role is then
as powerful as that role: the checks on the role itself are not enough.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
WITH RECURSIVE granted(roleid, path) AS (
    SELECT m.roleid, ARRAY[m.roleid]
    FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
    WHERE r.rolname = %(role)s
    UNION ALL
    SELECT m.roleid, g.path || m.roleid
    FROM pg_auth_members m JOIN granted g ON m.member = g.roleid
    WHERE NOT m.roleid = ANY(g.path)
)
SELECT DISTINCT ON (r.rolname)
       quote_ident(r.rolname),
       (SELECT string_agg(quote_ident(pg_get_userbyid(x)), ' -> ' ORDER BY o)
          FROM unnest(g.path) WITH ORDINALITY AS p(x, o)) AS chain,
       quote_ident(pg_get_userbyid(g.path[1])) AS direct,
       r.rolsuper, r.rolbypassrls,
       ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
               AND c.relowner = r.oid ORDER BY 1) AS owned
FROM granted g JOIN pg_roles r ON r.oid = g.roleid
WHERE r.rolsuper OR r.rolbypassrls
   OR EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
                AND c.relowner = r.oid)
ORDER BY r.rolname, array_length(g.path, 1)
"""


def acts_with_inherited_power(
    ctx: Context,
    role: str,
    chain: str,
    direct: str,
    superuser: bool,
    bypassrls: bool,
    owned: list[str],
) -> Hole:
    powers = [
        *(["is a superuser"] if superuser else []),
        *(["has BYPASSRLS"] if bypassrls else []),
        *([f"owns {', '.join(owned)}"] if owned else []),
    ]
    return Hole(
        Severity.ERROR,
        object=f"role {ctx.role} -> {chain}",
        explanation=f"the runtime role is a member of {role}, which "
        f"{' and '.join(powers)}: it can act with that role's power",
        fix=f"REVOKE {direct} FROM {ctx.role};",
    )


RULE = Rule.per_row(
    "runtime_role_member_of_privileged",
    "runtime role is a member of a privileged role",
    SQL,
    acts_with_inherited_power,
)
