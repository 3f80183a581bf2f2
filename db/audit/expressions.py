"""Reading policy expressions with PostgreSQL's own parser (pglast wraps libpg_query).

The rules hand over `pg_get_expr()` text, the expression as PostgreSQL deparses it; pglast
turns it back into the parse tree PostgreSQL itself would build. Judging by the tree, not the
text, is what makes the verdicts exact: which conjuncts are mandatory (every branch of the
top-level AND must hold) and which sit in an optional OR branch, what a COALESCE falls back
to, which calls sit inside a scalar subquery (evaluated once per statement) and which run for
every row. Casts, parentheses, schema qualification and spelling never change a verdict.

"The identity" is the setting the unit of work fills: `current_setting('app.user_id' ...)`,
optionally wrapped in NULLIF(..., ''), casts and a scalar `(select ...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.stream import RawStream

IDENTITY_SETTING = "app.user_id"
TENANT_COLUMN = "user_id"
_LIKE_KINDS = (
    enums.A_Expr_Kind.AEXPR_LIKE,
    enums.A_Expr_Kind.AEXPR_ILIKE,
    enums.A_Expr_Kind.AEXPR_SIMILAR,
)
_REGEX_OPERATORS = ("~", "~*", "!~", "!~*", "~~", "~~*")
_VARYING = (ast.ColumnRef, ast.ParamRef, ast.FuncCall, ast.SubLink, ast.SQLValueFunction)


def parse(expression: str) -> ast.Node:
    """The parse tree of one expression, as PostgreSQL reads it in a select list."""
    statement = parse_sql(f"SELECT {expression}")[0].stmt
    assert isinstance(statement, ast.SelectStmt) and statement.targetList
    target = statement.targetList[0]
    assert isinstance(target, ast.ResTarget) and target.val is not None
    return target.val


def _children(node: Any) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _children(item)
    elif isinstance(node, ast.Node):
        for name in node:
            value = getattr(node, name)
            if isinstance(value, ast.Node):
                yield value
            elif isinstance(value, tuple | list):
                yield from (v for v in value if isinstance(v, ast.Node))


def _walk(node: ast.Node, *, into_subqueries: bool = True) -> Iterator[ast.Node]:
    yield node
    if isinstance(node, ast.SubLink) and not into_subqueries:
        return
    for child in _children(node):
        yield from _walk(child, into_subqueries=into_subqueries)


def _function_name(call: ast.FuncCall) -> str:
    name: Any = call.funcname  # schema-qualified or not: the last part names the function
    return str(name[-1].sval).lower()


def _string_constant(node: Any) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return str(node.val.sval)
    return None


def _scalar_subquery_value(node: ast.Node) -> ast.Node | None:
    """`(select x)` with no FROM: PostgreSQL evaluates x once, as an init plan."""
    if isinstance(node, ast.SubLink) and node.subLinkType == enums.SubLinkType.EXPR_SUBLINK:
        select = node.subselect
        if isinstance(select, ast.SelectStmt) and not select.fromClause and select.targetList:
            target = select.targetList[0]
            if len(select.targetList) == 1 and isinstance(target, ast.ResTarget):
                return target.val
    return None


def is_identity(node: Any) -> bool:
    """Does this node evaluate to the caller's identity (or NULL when it is unset)?"""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if node is None:
        return False
    inner = _scalar_subquery_value(node)
    if inner is not None:
        return is_identity(inner)
    if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_NULLIF:
        return is_identity(node.lexpr) and _string_constant(node.rexpr) == ""
    return (
        isinstance(node, ast.FuncCall)
        and _function_name(node) == "current_setting"
        and _string_constant((node.args or (None,))[0]) == IDENTITY_SETTING
    )


def reads_identity(node: Any) -> bool:
    return isinstance(node, ast.Node) and any(is_identity(n) for n in _walk(node))


def _is_tenant_column(node: Any) -> bool:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.ColumnRef):
        return False
    last: Any = (node.fields or (None,))[-1]
    return isinstance(last, ast.String) and last.sval == TENANT_COLUMN


def _operator(node: ast.A_Expr) -> str:
    name: Any = node.name
    return str(name[-1].sval) if name else ""


def _is_binding(node: ast.Node) -> bool:
    """`user_id = <identity>` (either way round)."""
    return (
        isinstance(node, ast.A_Expr)
        and node.kind == enums.A_Expr_Kind.AEXPR_OP
        and _operator(node) == "="
        and (
            (_is_tenant_column(node.lexpr) and is_identity(node.rexpr))
            or (_is_tenant_column(node.rexpr) and is_identity(node.lexpr))
        )
    )


def _flatten(node: ast.Node, boolop: enums.BoolExprType) -> list[ast.Node]:
    if isinstance(node, ast.BoolExpr) and node.boolop == boolop:
        return [part for arg in node.args or () for part in _flatten(arg, boolop)]
    return [node]


def conjuncts(node: ast.Node) -> list[ast.Node]:
    """The parts every row must satisfy: the top-level AND, flattened."""
    return _flatten(node, enums.BoolExprType.AND_EXPR)


def disjuncts(node: ast.Node) -> list[ast.Node]:
    """Every OR branch anywhere in the expression (each can admit a row on its own)."""
    return [
        branch
        for n in _walk(node)
        if isinstance(n, ast.BoolExpr) and n.boolop == enums.BoolExprType.OR_EXPR
        for branch in _flatten(n, enums.BoolExprType.OR_EXPR)
    ]


def deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


@dataclass(frozen=True)
class IdentityVerdict:
    """How one USING or WITH CHECK expression relates rows to the caller's identity."""

    bound: bool  # `user_id = <identity>` is a mandatory conjunct
    compares: bool  # `user_id = <identity>` appears somewhere, perhaps only in an OR branch
    null_escapes: tuple[str, ...]  # OR branches that hold when the identity is NULL or ''
    wildcards: tuple[str, ...]  # pattern matches or fallbacks that admit any user's rows


def _holds_without_identity(branch: ast.Node) -> bool:
    """Is this branch true when the identity is NULL or ''?"""
    if isinstance(branch, ast.NullTest):
        return branch.nulltesttype == enums.NullTestType.IS_NULL and reads_identity(branch.arg)
    if isinstance(branch, ast.BoolExpr) and branch.boolop == enums.BoolExprType.NOT_EXPR:
        (inner,) = branch.args or (None,)
        return (
            isinstance(inner, ast.NullTest)
            and inner.nulltesttype == enums.NullTestType.IS_NOT_NULL
            and reads_identity(inner.arg)
        )
    if isinstance(branch, ast.A_Expr) and _operator(branch) in ("=", "<=", ">=", "~~"):
        sides = (branch.lexpr, branch.rexpr)
        return any(_string_constant(side) == "" for side in sides) and any(
            side is not None and reads_identity(side) for side in sides
        )
    if isinstance(branch, ast.A_Expr) and branch.kind == enums.A_Expr_Kind.AEXPR_NOT_DISTINCT:
        return any(
            isinstance(side, ast.A_Const) and side.isnull for side in (branch.lexpr, branch.rexpr)
        )
    return False


def _wildcard(node: ast.Node) -> bool:
    """A match that admits more than the caller's own user_id."""
    if not isinstance(node, ast.A_Expr):
        return False
    like = node.kind in _LIKE_KINDS or (
        node.kind == enums.A_Expr_Kind.AEXPR_OP and _operator(node) in _REGEX_OPERATORS
    )
    if like and node.rexpr is not None and reads_identity(node.rexpr):
        return True  # an identity of '%' (or a COALESCE fallback of '%') matches every user
    if node.kind == enums.A_Expr_Kind.AEXPR_OP and _operator(node) == "=":
        for column, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            if _is_tenant_column(column) and isinstance(other, ast.CoalesceExpr):
                fallbacks = (other.args or ())[1:]
                if reads_identity(other) and any(_is_tenant_column(f) for f in fallbacks):
                    return True  # user_id = coalesce(<identity>, user_id): unset admits all
    return False


def judge_identity(expression: str) -> IdentityVerdict:
    tree = parse(expression)
    return IdentityVerdict(
        bound=any(_is_binding(part) for part in conjuncts(tree)),
        compares=any(_is_binding(n) for n in _walk(tree)),
        null_escapes=tuple(deparse(b) for b in disjuncts(tree) if _holds_without_identity(b)),
        wildcards=tuple(deparse(n) for n in _walk(tree) if _wildcard(n)),
    )


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
    for node in _walk(tree, into_subqueries=False):
        if isinstance(node, ast.FuncCall) and not any(
            isinstance(n, ast.ColumnRef) for n in _walk(node)
        ):
            found.append((_function_name(node), node))
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
    return not any(isinstance(n, _VARYING) for n in _walk(parse(expression)))


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
        yield from _walk(node)


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
        return any(_references_row(child, inner) for child in _children(select))
    return any(_references_row(child, local_names) for child in _children(node))
