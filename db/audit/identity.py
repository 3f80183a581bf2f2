"""How a policy expression relates rows to the caller's identity, judged on its parse tree.

"The identity" is the setting the unit of work fills: `current_setting('app.user_id' ...)`,
optionally wrapped in NULLIF(..., ''), casts and a scalar `(select ...)`. A policy binds rows
to it when `user_id = <identity>` is a mandatory conjunct (a part of the top-level AND): then
no OR branch, fallback or pattern elsewhere can admit another user's row. The verdict also
names the two classic escapes, so the rules can say what each lets through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast, enums

from db.audit.expressions import (
    deparse,
    function_name,
    parse,
    scalar_subquery_value,
    string_constant,
    walk,
)
from db.identity import USER_ID_SETTING

TENANT_COLUMN = "user_id"
_LIKE_KINDS = (
    enums.A_Expr_Kind.AEXPR_LIKE,
    enums.A_Expr_Kind.AEXPR_ILIKE,
    enums.A_Expr_Kind.AEXPR_SIMILAR,
)
_REGEX_OPERATORS = ("~", "~*", "!~", "!~*", "~~", "~~*")


def is_identity(node: Any) -> bool:
    """Does this node evaluate to the caller's identity (or NULL when it is unset)?"""
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if node is None:
        return False
    inner = scalar_subquery_value(node)
    if inner is not None:
        return is_identity(inner)
    if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_NULLIF:
        return is_identity(node.lexpr) and string_constant(node.rexpr) == ""
    return (
        isinstance(node, ast.FuncCall)
        and function_name(node) == "current_setting"
        and string_constant((node.args or (None,))[0]) == USER_ID_SETTING
    )


def reads_identity(node: Any) -> bool:
    return isinstance(node, ast.Node) and any(is_identity(n) for n in walk(node))


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
        for n in walk(node)
        if isinstance(n, ast.BoolExpr) and n.boolop == enums.BoolExprType.OR_EXPR
        for branch in _flatten(n, enums.BoolExprType.OR_EXPR)
    ]


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
        return any(string_constant(side) == "" for side in sides) and any(
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
        compares=any(_is_binding(n) for n in walk(tree)),
        null_escapes=tuple(deparse(b) for b in disjuncts(tree) if _holds_without_identity(b)),
        wildcards=tuple(deparse(n) for n in walk(tree) if _wildcard(n)),
    )
