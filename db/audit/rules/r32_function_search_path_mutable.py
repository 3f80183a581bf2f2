"""function_search_path_mutable: a function of the schema runs with the caller's search_path
(splinter 0011).

A function (a trigger on a tenant table included) that does not pin its search_path resolves
every unqualified name through whatever path the calling session set: a role that can create
objects earlier on that path can substitute its own `now()` or table and run code inside the
function, as its caller or, for SECURITY DEFINER, as its owner.
"""

from __future__ import annotations

from db.audit.rule import Context, Hole, Rule, Severity

SQL = """
SELECT p.oid::regprocedure::text, p.prosecdef
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
  AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  AND NOT EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) c
                  WHERE c LIKE 'search_path=%%')
ORDER BY 1
"""


def planted_objects_run_inside(ctx: Context, signature: str, definer: bool) -> Hole:
    return Hole(
        Severity.WARN,
        object=f"function {signature}",
        explanation="the function resolves names through the caller's search_path"
        + (" while running as its owner (SECURITY DEFINER)" if definer else "")
        + ": objects planted earlier on that path run inside it",
        fix=f"ALTER FUNCTION {signature} SET search_path = pg_catalog, {ctx.schema};",
    )


RULE = Rule.per_row(
    "function_search_path_mutable",
    "function without a pinned search_path",
    SQL,
    planted_objects_run_inside,
)
