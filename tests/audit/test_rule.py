"""The rule shapes of db/audit/rule.py: a rule module describes holes, the shape signs them.

Judged on the audit database with queries over literal rows, so what is pinned is the shape's
own behaviour (which rows become findings, and under which id), not any catalog state.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg

from db.audit import Finding, Severity
from db.audit.rule import Context, Hole, Rule

NUMBERS = "SELECT n FROM unnest(%(numbers)s::int[]) AS n ORDER BY n"


def context(conn: psycopg.Connection) -> Context:
    return Context(conn, "public", "tasks_app", ())


def odd_number(ctx: Context, n: int) -> Hole | None:
    if n % 2 == 0:
        return None
    return Hole(Severity.WARN, object=f"number {n}", explanation="it is odd", fix="add one")


def test_per_row_signs_each_hole_with_the_rule_id(conn: psycopg.Connection) -> None:
    rule = Rule.per_row("odd_numbers", "odd numbers", NUMBERS, odd_number, numbers=[1, 3])
    assert rule.check(context(conn)) == [
        Finding("odd_numbers", Severity.WARN, "number 1", "it is odd", "add one"),
        Finding("odd_numbers", Severity.WARN, "number 3", "it is odd", "add one"),
    ]


def test_per_row_reports_nothing_for_a_row_whose_hole_is_none(conn: psycopg.Connection) -> None:
    rule = Rule.per_row("odd_numbers", "odd numbers", NUMBERS, odd_number, numbers=[1, 2, 4])
    assert [f.object for f in rule.check(context(conn))] == ["number 1"]


def test_per_row_passes_the_context_parameters_to_the_query(conn: psycopg.Connection) -> None:
    def role_row(ctx: Context, role: str) -> Hole:
        return Hole(Severity.INFO, object=role, explanation="judged", fix="")

    rule = Rule.per_row("role", "role", "SELECT %(role)s::text", role_row)
    assert [f.object for f in rule.check(context(conn))] == ["tasks_app"]


def test_from_holes_signs_every_hole_its_own_loop_yields(conn: psycopg.Connection) -> None:
    def two_per_row(ctx: Context) -> Iterator[Hole]:
        for (n,) in ctx.rows(NUMBERS, numbers=[7]):
            for clause in ("USING", "WITH CHECK"):
                yield Hole(Severity.ERROR, object=f"{clause} {n}", explanation="", fix="")

    rule = Rule.from_holes("clauses", "clauses", two_per_row)
    assert [(f.rule, f.object) for f in rule.check(context(conn))] == [
        ("clauses", "USING 7"),
        ("clauses", "WITH CHECK 7"),
    ]
