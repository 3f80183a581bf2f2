"""runtime_role_can_log_in: tasks_app has LOGIN.

The service never logs in as tasks_app; it switches to it per transaction. A tasks_app that can
log in lets whoever authenticates as it set app.user_id to anyone's id: every tenant's rows,
no token needed. Whether a password or pg_hba.conf stops that is outside what the catalog shows.
"""

from __future__ import annotations

from db.audit.rules._shapes import runtime_role_attribute_rule

SQL = "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname = %(role)s AND rolcanlogin"

RULE = runtime_role_attribute_rule(
    "runtime_role_can_log_in",
    "runtime role has LOGIN",
    SQL,
    attribute="LOGIN",
    explanation="the runtime role can log in: a direct connection as it may set "
    "app.user_id to any user's id and act as that user without a token",
)
