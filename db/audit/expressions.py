"""Reading policy expressions with PostgreSQL's own parser (pglast wraps libpg_query).

The rules hand over `pg_get_expr()` text, the expression as PostgreSQL deparses it; pglast
turns it back into the parse tree PostgreSQL itself would build. Judging by the tree, not the
text, is what makes the verdicts exact: which conjuncts are mandatory (every branch of the
top-level AND must hold) and which sit in an optional OR branch, what a COALESCE falls back
to, which calls sit inside a scalar subquery (evaluated once per statement) and which run for
every row. Casts, parentheses, schema qualification and spelling never change a verdict.
How an expression relates rows to the caller's identity is db.audit.identity's question.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

_VARYING = (ast.ColumnRef, ast.ParamRef, ast.FuncCall, ast.SubLink, ast.SQLValueFunction)


def parse(expression: str) -> ast.Node:
    """The parse tree of one expression, as PostgreSQL reads it in a select list."""
    statement = parse_sql(f"SELECT {expression}")[0].stmt
    assert isinstance(statement, ast.SelectStmt) and statement.targetList
    target = statement.targetList[0]
    assert isinstance(target, ast.ResTarget) and target.val is not None
    return target.val


def children(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from children(item)
    elif isinstance(node, ast.Node):
        for name in node:
            value = getattr(node, name)
            if isinstance(value, ast.Node):
                yield value
            elif isinstance(value, tuple | list):
                yield from (v for v in value if isinstance(v, ast.Node))


def walk(node: ast.Node, *, into_subqueries: bool = True) -> Iterator[ast.Node]:
    yield node
    if isinstance(node, ast.SubLink) and not into_subqueries:
        return
    for child in children(node):
        yield from walk(child, into_subqueries=into_subqueries)


def function_name(call: ast.FuncCall) -> str:
    name: Any = call.funcname  # schema-qualified or not: the last part names the function
    return str(name[-1].sval).lower()


def string_constant(node: Any) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return None


def scalar_subquery_value(node: ast.Node) -> ast.Node | None:
    """`(select x)` with no FROM: PostgreSQL evaluates x once, as an init plan."""
    if isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.EXPR_SUBLINK:
        select = node.subselect
        if isinstance(select, ast.SelectStmt) and not select.fromClause and select.targetList:
            target = select.targetList[0]
            if len(select.targetList) == 1 and isinstance(target, ast.ResTarget):
                return target.val
    return None


def deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


def per_row_calls(expression: str | None) -> list[str]:
    """Names of functions called outside any subquery with no column in their arguments.

    Such a call gives the same value on every row yet (unless PostgreSQL can fold it) runs on
    every row; wrapped in `(select ...)` it becomes an init plan evaluated once per statement.
    """
    if not expression:
        return []
    return [call for call, _ in _per_row_call_nodes(parse(expression))]


def _per_row_call_nodes(tree: ast.Node) -> list[tuple[str, ast.FuncCall]]:
    found = []
    for node in walk(tree, into_subqueries=False):
        if isinstance(node, ast.FuncCall) and not any(
            isinstance(n, ast.ColumnRef) for n in walk(node)
        ):
            found.append((function_name(node), node))
    return found


def wrap_calls_in_select(expression: str, function_names: set[str]) -> str:
    """The expression with each named per-row call evaluated once: `f(x)` -> `(SELECT f(x))`."""
    tree = parse(expression)
    targets = {id(node) for name, node in _per_row_call_nodes(tree) if name in function_names}

    def wrapped(node: Any) -> Any:
        if isinstance(node, tuple | list):
            return type(node)(wrapped(item) for item in node)
        if not isinstance(node, ast.Node):
            return node
        if id(node) in targets:
            return ast.SubLink(
                subLinkType=enums.SubLinkType.EXPR_SUBLINK,
                subselect=ast.SelectStmt(
                    targetList=(ast.ResTarget(val=node),),
                    limitOption=enums.LimitOption.LIMIT_OPTION_DEFAULT,
                    op=enums.SetOperation.SETOP_NONE,
                ),
            )
        if isinstance(node, ast.SubLink):
            return node
        for name in node:
            value = getattr(node, name)
            if isinstance(value, ast.Node | tuple | list):
                setattr(node, name, wrapped(value))
        return node

    return deparse(wrapped(tree))


def is_row_independent_constant(expression: str | None) -> bool:
    """No column, parameter, function call or subquery: the same value for every row and user."""
    if not expression:
        return False
    return not any(isinstance(n, _VARYING) for n in walk(parse(expression)))


def references_row(expression: str | None) -> bool:
    """Does the expression look at the row it is judging?

    A column outside any subquery does; so does a column inside a FROM-less subquery (it can
    only name the policy's row). Inside a subquery with a FROM, a column counts when its
    qualifier is none of that FROM's names (a correlated reference back to the row).
    """
    if not expression:
        return False
    return _references_row(parse(expression), local_names=None)


def _from_names(select: ast.SelectStmt) -> set[str]:
    names = set()
    for item in _walk_tuple(select.fromClause):
        if isinstance(item, ast.RangeVar):
            names.add(str(item.alias.aliasname if item.alias else item.relname))
    return names


def _walk_tuple(nodes: Any) -> Iterator[ast.Node]:
    for node in nodes or ():
        yield from walk(node)


def _references_row(node: ast.Node, local_names: set[str] | None) -> bool:
    if isinstance(node, ast.ColumnRef):
        if local_names is None:
            return True
        fields: Any = node.fields or ()
        qualifier = fields[0] if len(fields) > 1 else None
        return isinstance(qualifier, ast.String) and qualifier.sval not in local_names
    if isinstance(node, ast.SubLink) and isinstance(node.subselect, ast.SelectStmt):
        select = node.subselect
        names = _from_names(select) if select.fromClause else None
        inner = (local_names or set()) | names if names is not None else local_names
        return any(_references_row(child, inner) for child in children(select))
    return any(_references_row(child, local_names) for child in children(node))
