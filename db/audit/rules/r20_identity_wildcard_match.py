"""identity_wildcard_match: the identity is used as a pattern, or falls back to "anyone".

`user_id LIKE <identity>` lets an identity of '%' (a `sub` claim is whatever the issuer put
there) match every user; `LIKE coalesce(<identity>, '%')` does it for every transaction without
an identity; `user_id = coalesce(<identity>, user_id)` compares the row with itself when the
identity is unset. Tenant ids are compared for equality, never matched.
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, Severity
from db.audit.rules._identity import judged_clauses


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=Severity.ERROR,
            object=judged.object,
            explanation=f"{judged.clause} matches {'; '.join(judged.verdict.wildcards)}: an "
            "identity of '%' (or none at all) admits every tenant's rows",
            fix=judged.fix,
        )
        for judged in judged_clauses(ctx)
        if judged.verdict.wildcards
    ]


RULE = Rule("identity_wildcard_match", "policy matches the identity as a pattern", check)
