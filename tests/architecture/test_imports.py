"""The architecture as imports: db/ below api/, the CLI above both, and no circle anywhere.

Every import counts, including the ones deferred into a function body: a circle hidden in a
function is still a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "cli", "db")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def imported(path: Path) -> Iterator[str]:
    """The project modules `path` imports (a `from package import name` may name a module)."""
    known = modules()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        yield from (name for name in names if name in known)


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imported(path)) for name, path in modules().items()}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_in_a_circle() -> None:
    assert cycles() == []


@pytest.mark.parametrize(
    ("lower", "upper"), [("db", "api"), ("db", "cli"), ("api", "cli")], ids=lambda p: p
)
def test_a_lower_layer_never_imports_a_higher_one(lower: str, upper: str) -> None:
    offenders = {
        name: sorted(target for target in targets if target.split(".")[0] == upper)
        for name, targets in graph().items()
        if name.split(".")[0] == lower
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_folder_of_api_holds_more_than_ten_modules() -> None:
    folders: dict[Path, int] = {}
    for path in (ROOT / "api").rglob("*.py"):
        folders[path.parent] = folders.get(path.parent, 0) + 1
    assert {str(folder): n for folder, n in folders.items() if n > 10} == {}


def area(module: str) -> str:
    """A module's room: its folder or top-level module under api/ (api.auth, api.problems, ...),
    else its top package (db, cli)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "api" and len(parts) > 1 else parts[0]


def test_no_two_rooms_import_each_other_even_through_others() -> None:
    rooms: dict[str, set[str]] = {}
    for name, targets in graph().items():
        rooms.setdefault(area(name), set()).update(
            area(target) for target in targets if area(target) != area(name)
        )

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in rooms.get(start, ())
        )

    assert sorted(room for room in rooms if reaches(room, room, {room})) == []
