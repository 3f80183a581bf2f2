"""extension_in_schema: an extension is installed in the application schema (splinter 0014).

Its functions and tables then sit next to the tenant tables, on every role's search_path, and
take part in the grants and audits of the schema (a later `GRANT ... ON ALL TABLES IN SCHEMA`
reaches them too). Extensions belong in a schema of their own.
"""

from __future__ import annotations

from db.audit.rule import Context, Finding, Rule, Severity

SQL = """
SELECT quote_ident(e.extname), quote_ident(n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE n.nspname = %(schema)s
ORDER BY 1
"""


def check(ctx: Context) -> list[Finding]:
    return [
        Finding(
            rule=RULE.id,
            severity=Severity.WARN,
            object=f"extension {extension}",
            explanation=f"the extension lives in {schema}, beside the tenant tables and on "
            "every role's search_path",
            fix=f"CREATE SCHEMA IF NOT EXISTS extensions;\n"
            f"ALTER EXTENSION {extension} SET SCHEMA extensions;",
        )
        for extension, schema in ctx.rows(SQL)
    ]


RULE = Rule("extension_in_schema", "extension installed in the application schema", check)
