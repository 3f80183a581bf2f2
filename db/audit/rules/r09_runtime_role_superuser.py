"""runtime_role_superuser: the role every request runs as is a superuser.

Superusers bypass row-level security entirely (FORCE included) and every privilege check: the
database stops enforcing tenant isolation, leaving only the Python filters.
"""

from __future__ import annotations

from db.audit.rules._shapes import runtime_role_attribute_rule

SQL = "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = %(role)s AND rolsuper"

RULE = runtime_role_attribute_rule(
    "runtime_role_superuser",
    "runtime role is a superuser",
    SQL,
    attribute="SUPERUSER",
    explanation="the runtime role is a superuser: row-level security and grants never apply to it",
)
