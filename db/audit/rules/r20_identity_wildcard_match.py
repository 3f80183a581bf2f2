"""identity_wildcard_match: the identity is used as a pattern, or falls back to "anyone".

`user_id LIKE <identity>` lets an identity of '%' (a `sub` claim is whatever the issuer put
there) match every user; `LIKE coalesce(<identity>, '%')` does it for every transaction without
an identity; `user_id = coalesce(<identity>, user_id)` compares the row with itself when the
identity is unset. Tenant ids are compared for equality, never matched.
"""

from __future__ import annotations

from db.audit.rules._identity import JudgedClause, identity_rule


def matches_every_user(judged: JudgedClause) -> str | None:
    if not judged.verdict.wildcards:
        return None
    return (
        f"{judged.clause} matches {'; '.join(judged.verdict.wildcards)}: an "
        "identity of '%' (or none at all) admits every tenant's rows"
    )


RULE = identity_rule(
    "identity_wildcard_match", "policy matches the identity as a pattern", matches_every_user
)
