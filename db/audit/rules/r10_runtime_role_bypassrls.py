"""runtime_role_bypassrls: the role every request runs as has BYPASSRLS.

BYPASSRLS skips every policy on every table, FORCE included. Neon's default role has it, which
is exactly why requests switch to a runtime role that must not.
"""

from __future__ import annotations

from db.audit.rules._shapes import runtime_role_attribute_rule

SQL = "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = %(role)s AND rolbypassrls"

RULE = runtime_role_attribute_rule(
    "runtime_role_bypassrls",
    "runtime role has BYPASSRLS",
    SQL,
    attribute="BYPASSRLS",
    explanation="the runtime role has BYPASSRLS: no policy applies to it",
)
