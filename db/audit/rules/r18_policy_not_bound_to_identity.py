"""policy_not_bound_to_identity: a policy that lets rows through without `user_id = <identity>`.

The ownership rule holds only if every row a policy admits carries the caller's id: the
expression must have `user_id = <the identity>` as a mandatory conjunct (a part of its
top-level AND). Two ways to miss it:
* it never compares user_id with the identity at all (`WITH CHECK (user_id IS NOT NULL)`:
  any caller files rows under any user; `USING (completed)`: every tenant's done tasks);
* it compares them only in one branch of an OR, so the other branch admits rows alone.
A branch that opens on a NULL or empty identity, or a wildcard match, is reported by its own
rule (null_identity_disjunct, identity_wildcard_match), which names that hole more precisely.
"""

from __future__ import annotations

from db.audit.rules._identity import JudgedClause, identity_rule


def admits_any_user(judged: JudgedClause) -> str | None:
    verdict = judged.verdict
    if verdict.bound or verdict.null_escapes or verdict.wildcards:
        return None
    lets_through = (
        "compares user_id with the caller's identity only in one branch of an OR: another "
        "branch admits rows of any user on its own"
        if verdict.compares
        else "never compares user_id with the caller's identity: it admits rows of any user"
    )
    return f"{judged.clause} ({judged.expression}) {lets_through}"


RULE = identity_rule(
    "policy_not_bound_to_identity",
    "policy admits rows without user_id = <identity> as a mandatory condition",
    admits_any_user,
)
