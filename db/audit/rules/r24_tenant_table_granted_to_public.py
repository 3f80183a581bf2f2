"""tenant_table_granted_to_public: a tenant table's privilege granted to PUBLIC.

PUBLIC is every role, present and future: a reporting role, a role created next year, the
login role of another application on the same cluster. Row-level security still filters for
them today (no policy names them, so they see nothing), but one `TO PUBLIC` policy or one
role with BYPASSRLS later and they read every tenant. policies/ grants to tasks_app only.
TRUNCATE, TRIGGER and REFERENCES are excess_table_privilege's findings.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname), a.privilege_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND a.grantee = 0
  AND a.privilege_type NOT IN ('TRUNCATE', 'TRIGGER', 'REFERENCES')
ORDER BY 1, 2
"""


def every_role_one_step_from_all_rows(ctx: Context, table: str, privilege: str) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"{table} {privilege} to PUBLIC",
        explanation=f"every role, present and future, holds {privilege} on a tenant table; "
        "only row-level security stands between them and every tenant's rows",
        fix=f"REVOKE {privilege} ON {table} FROM PUBLIC;",
    )


RULE = Rule.per_row(
    "tenant_table_granted_to_public",
    "tenant table privilege granted to PUBLIC",
    SQL,
    every_role_one_step_from_all_rows,
)
