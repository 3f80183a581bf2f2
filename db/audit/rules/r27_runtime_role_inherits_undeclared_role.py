"""runtime_role_inherits_undeclared_role: tasks_app is a member of a role policies/ never grants.

A membership hands tasks_app every privilege of the other role, including those granted to it
later by someone who never read policies/: a reporting role's SELECT on another schema, a
support role's UPDATE on user_id. A privileged role (superuser, BYPASSRLS, owner) in the chain
is runtime_role_member_of_privileged's ERROR; this rule reports any membership not declared.
"""

from __future__ import annotations

from collections.abc import Iterator

from db.audit.rule import AuditUnavailable, Context, Hole, Rule, Severity
from db.catalog import POLICIES_DIR, ROLES_FILE, declared_role

SQL = """
SELECT quote_ident(pg_get_userbyid(m.roleid)), pg_get_userbyid(m.roleid)
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
WHERE r.rolname = %(role)s
ORDER BY 1
"""


def inherits_undeclared_privileges(ctx: Context) -> Iterator[Hole]:
    if not (POLICIES_DIR / ROLES_FILE).is_file():
        raise AuditUnavailable(f"no {ROLES_FILE} found at {POLICIES_DIR}")
    _, declared = declared_role(ctx.role)
    role = ctx.quote(ctx.role)[0]
    for quoted, name in ctx.rows(SQL):
        if name in declared:
            continue
        yield Hole(
            Severity.WARN,
            object=f"role {role} member of {quoted}",
            explanation=f"the runtime role inherits every privilege of {quoted}, now and as it "
            "is granted more, and policies/ declares no such membership",
            fix=f"REVOKE {quoted} FROM {role};",
        )


RULE = Rule.from_holes(
    "runtime_role_inherits_undeclared_role",
    "runtime role is a member of an undeclared role",
    inherits_undeclared_privileges,
)
