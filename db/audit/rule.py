"""The shapes every audit rule shares: what a rule sees (Context) and what it reports (Finding).

A rule is a small module under `db/audit/rules/`: its SQL first, then what each row it returns
lets through (a Hole: severity, object, explanation, fix). `Rule.per_row` and `Rule.from_holes`
run the query and sign every hole with the rule's id, so no module repeats that loop or its own
id. Rules only read; the runner rolls back whatever a rule did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import psycopg

# The tenant rule as a policy expression: the fix SQL of several rules offers it, and it is the
# text policies/*.sql uses (evaluated once per statement through the scalar subquery).
OWN_ROWS = "user_id = (select nullif(current_setting('app.user_id', true), ''))"


class Severity(StrEnum):
    """ERROR: isolation may not hold (serve refuses to start). WARN: weaker than declared or slow.
    INFO: worth knowing, not wrong by itself."""

    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"


class AuditUnavailable(Exception):
    """A rule cannot judge this database (e.g. policies/ is not on disk): an error, not a pass."""


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    object: str
    explanation: str
    fix: str

    def as_json(self) -> dict[str, str]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def one_line(self) -> str:
        return f"{self.rule}: {self.object}: {self.explanation}"


@dataclass(frozen=True)
class Context:
    """What every rule is told: where to look and whom to judge.

    `tenant_tables` are discovered, not hard-coded: every table of the application schema with a
    `user_id` column, plus the tables db.catalog declares as tenant tables.
    """

    conn: psycopg.Connection[Any]
    schema: str
    role: str
    tenant_tables: tuple[str, ...]

    @property
    def params(self) -> dict[str, Any]:
        return {"schema": self.schema, "role": self.role, "tables": list(self.tenant_tables)}

    def rows(self, query: str, **extra: Any) -> list[tuple[Any, ...]]:
        return self.conn.execute(query, {**self.params, **extra}).fetchall()

    def quote(self, *names: str) -> list[str]:
        """Identifiers quoted by PostgreSQL's own rules (quote_ident), for fix SQL."""
        rows = self.conn.execute("SELECT quote_ident(x) FROM unnest(%s::text[]) x", (list(names),))
        return [str(r[0]) for r in rows.fetchall()]

    def qualified(self, table: str) -> str:
        schema, name = self.quote(self.schema, table)
        return f"{schema}.{name}"


@dataclass(frozen=True)
class Hole:
    """A finding before its rule signs it: rule modules say what a row lets through, and the
    id is written once, in their RULE, instead of in every finding they build."""

    severity: Severity
    object: str
    explanation: str
    fix: str

    def signed(self, rule: str) -> Finding:
        return Finding(rule, self.severity, self.object, self.explanation, self.fix)


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    check: Callable[[Context], list[Finding]]

    @classmethod
    def from_holes(cls, id: str, summary: str, holes: Callable[[Context], Iterable[Hole]]) -> Rule:
        """A rule whose `holes(ctx)` finds what it reports (for rules with their own loop)."""

        def check(ctx: Context) -> list[Finding]:
            return [hole.signed(id) for hole in holes(ctx)]

        return cls(id, summary, check)

    @classmethod
    def per_row(
        cls,
        id: str,
        summary: str,
        query: str,
        hole: Callable[..., Hole | None],
        **params: Any,
    ) -> Rule:
        """Splinter's shape: every row `query` returns is called as `hole(ctx, *row)`, which
        says what that row lets through (or None when, on a closer look, nothing)."""

        def holes(ctx: Context) -> Iterator[Hole]:
            for row in ctx.rows(query, **params):
                found = hole(ctx, *row)
                if found is not None:
                    yield found

        return cls.from_holes(id, summary, holes)


def exposure_severity(exposed: bool) -> Severity:
    """Tables holding tenant rows or reachable by the runtime role are errors; others warnings."""
    return Severity.ERROR if exposed else Severity.WARN
