"""null_identity_disjunct: an OR branch that opens the policy when no identity is set.

Splinter's 0030 hole: `user_id = <identity> OR <identity> IS NULL` reads as "own rows", but a
transaction that sets no identity (a background job, a bug, a direct connection as the login
role) satisfies the second branch and reaches every tenant's rows. On a pooled connection an
unset `app.user_id` reads as '' rather than NULL, so `= ''` branches count as well. Judged on
the parse tree: any OR branch, at any depth, that is true when the identity is NULL or ''.
"""

from __future__ import annotations

from db.audit.rules._identity import JudgedClause, identity_rule


def opens_without_identity(judged: JudgedClause) -> str | None:
    if not judged.verdict.null_escapes:
        return None
    return (
        f"{judged.clause} has the OR branch "
        f"{'; '.join(judged.verdict.null_escapes)}, which holds when app.user_id is unset "
        "or empty: a transaction with no identity reaches every tenant's rows"
    )


RULE = identity_rule(
    "null_identity_disjunct",
    "policy opens when the identity is NULL or empty",
    opens_without_identity,
)
