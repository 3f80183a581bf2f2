"""Reading policy expressions as PostgreSQL stored them (pg_node_tree), not as text.

`pg_policy.polqual` is the parsed expression in nodeToString form, e.g.
`{OPEXPR :opno 98 ... :args ({VAR :varno 1 ...} {SUBLINK ...})}`. Walking that tree tells
exactly which calls sit inside a scalar subquery (evaluated once per statement) and which are
evaluated for every row, with no guessing from the deparsed text. Constants are printed as byte
arrays and names are backslash-escaped, so braces delimit nodes unambiguously.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FUNCID = re.compile(r":funcid (\d+)")


@dataclass
class Node:
    kind: str
    text: str
    children: list[Node] = field(default_factory=list)

    def contains(self, kind: str) -> bool:
        return any(child.kind == kind or child.contains(kind) for child in self.children)


def parse(tree: str) -> list[Node]:
    """The top-level nodes of a nodeToString text (a policy expression has one)."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []
    i = 0
    while i < len(tree):
        char = tree[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            match = re.match(r"[A-Z_]+", tree[i + 1 :])
            node = Node(kind=match.group(0) if match else "", text="")
            (stack[-1][1].children if stack else roots).append(node)
            stack.append((i, node))
        elif char == "}" and stack:
            start, node = stack.pop()
            node.text = tree[start : i + 1]
        i += 1
    return roots


def per_row_calls(tree: str | None) -> list[int]:
    """Function ids called outside any subquery with no column in their arguments.

    Such a call gives the same value on every row yet (unless PostgreSQL can fold it) runs on
    every row; wrapped in `(select ...)` it becomes an init plan evaluated once per statement.
    """
    if not tree:
        return []
    found: list[int] = []

    def walk(node: Node) -> None:
        if node.kind == "SUBLINK":
            return
        if node.kind == "FUNCEXPR" and not node.contains("VAR"):
            match = _FUNCID.search(node.text)
            if match:
                found.append(int(match.group(1)))
            return
        for child in node.children:
            walk(child)

    for root in parse(tree):
        walk(root)
    return found


def is_row_independent_constant(tree: str | None) -> bool:
    """No column, parameter, function call or subquery: the same value for every row and user."""
    if not tree:
        return False
    roots = parse(tree)
    return bool(roots) and not any(
        root.kind in _VARYING or any(root.contains(kind) for kind in _VARYING) for root in roots
    )


_VARYING = ("VAR", "PARAM", "FUNCEXPR", "SUBLINK", "SQLVALUEFUNCTION")


def wrap_calls_in_select(expression: str, function_names: set[str]) -> str:
    """Rewrite deparsed text so each named call is evaluated once: `f(x)` -> `(SELECT f(x))`."""
    out: list[str] = []
    i = 0
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(function_names)) + r")\(")
    while i < len(expression):
        match = pattern.search(expression, i)
        if not match or not function_names:
            out.append(expression[i:])
            break
        start = match.start()
        end = _matching_paren(expression, match.end() - 1)
        out.append(expression[i:start])
        out.append(f"(SELECT {expression[start : end + 1]})")
        i = end + 1
    return "".join(out)


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    in_string = False
    i = open_at
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    i += 1
                else:
                    in_string = False
        elif char == "'":
            in_string = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text) - 1


def references_row(tree: str | None) -> bool:
    """Does the expression look at the row it is judging?

    A column outside any subquery does; so does a column inside a subquery that points one or
    more levels up (a correlated reference back to the policy's row).
    """
    if not tree:
        return False

    def walk(node: Node, in_subquery: bool) -> bool:
        if node.kind == "VAR":
            levels_up = re.search(r":varlevelsup (\d+)", node.text)
            return not in_subquery or bool(levels_up and int(levels_up.group(1)) > 0)
        inside = in_subquery or node.kind == "SUBLINK"
        return any(walk(child, inside) for child in node.children)

    return any(walk(root, False) for root in parse(tree))
