"""Run the audit rules against a live database and collect what they find.

Everything happens inside one transaction that is always rolled back (each rule in its own
savepoint), so an audit never changes the database, and one rule that cannot run (say, a role
without the right to create the drift rule's scratch schema) does not hide the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from db.audit.rule import AuditUnavailable, Context, Finding, Rule, Severity
from db.audit.rules import RULES
from db.catalog import tenant_tables
from db.errors import first_line
from db.identity import RUNTIME_ROLE


@dataclass(frozen=True)
class RuleError:
    rule: str
    message: str


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    errors: tuple[RuleError, ...] = field(default=())

    @property
    def errors_only(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"findings": [f.as_json() for f in self.findings]}
        if self.errors:
            data["errors"] = [{"rule": e.rule, "message": e.message} for e in self.errors]
        return data


def run_audit(
    conn: psycopg.Connection[Any],
    *,
    schema: str | None = None,
    role: str = RUNTIME_ROLE,
    rules: Sequence[Rule] = RULES,
) -> Report:
    findings: list[Finding] = []
    errors: list[RuleError] = []
    with conn.transaction(force_rollback=True):
        if schema is None:
            row = conn.execute("SELECT current_schema()").fetchone()
            schema = str(row[0]) if row and row[0] else "public"
        ctx = Context(conn, schema, role, tenant_tables(conn, schema))
        for rule in rules:
            try:
                with conn.transaction(force_rollback=True):
                    findings += rule.check(ctx)
            except (psycopg.Error, AuditUnavailable) as exc:
                errors.append(RuleError(rule.id, first_line(exc)))
    return Report(tuple(findings), tuple(errors))


def libpq_url(url: str) -> str:
    """The URL libpq understands: the same one with any SQLAlchemy driver suffix removed."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def audit_database(url: str, *, schema: str | None = None, role: str = RUNTIME_ROLE) -> Report:
    # No server-side prepared statements: the URL may be a transaction-mode pooler (Neon).
    with psycopg.connect(libpq_url(url), connect_timeout=10, prepare_threshold=None) as conn:
        return run_audit(conn, schema=schema, role=role)
