"""duplicate_index: two indexes of a table are identical (splinter 0009).

Same columns, operator classes, expressions, predicate and uniqueness: every insert and
update pays for both and the planner gains nothing. Constraint-backed indexes are kept; the
fix drops the other one.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname),
       array_agg(format('%%I.%%I', n.nspname, ic.relname)
                 ORDER BY (con.oid IS NULL), ic.relname) AS indexes
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
WHERE n.nspname = %(schema)s
GROUP BY n.nspname, c.relname, ic.relam, i.indkey::text, i.indclass::text, i.indcollation::text,
         i.indisunique, coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
         coalesce(pg_get_expr(i.indpred, i.indrelid), '')
HAVING count(*) > 1
ORDER BY 1
"""


def writes_pay_twice(ctx: Context, table: str, indexes: list[str]) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"{table} ({', '.join(indexes)})",
        explanation=f"{len(indexes)} identical indexes: each write maintains all of them, "
        f"reads use one",
        fix="\n".join(f"DROP INDEX CONCURRENTLY {index};" for index in indexes[1:]),
    )


RULE = Rule.per_row("duplicate_index", "identical indexes on one table", SQL, writes_pay_twice)
