"""The self-audit `tasks-api serve` runs before it accepts a request.

It reuses the audit rules: any ERROR finding (runtime role too powerful, a tenant table without
enabled + forced RLS or its policies, privileges contrary to policies/) means isolation could
not hold, and the service refuses to start. WARN and INFO findings are only reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.audit.runner import audit_database


@dataclass(frozen=True)
class StartupVerdict:
    refusals: tuple[str, ...]
    warnings: tuple[str, ...]


def self_audit(url: str) -> StartupVerdict:
    report = audit_database(url)
    refusals = tuple(f.one_line() for f in report.errors_only)
    warnings = tuple(f.one_line() for f in report.findings if f not in report.errors_only) + tuple(
        f"could not run audit rule {e.rule}: {e.message}" for e in report.errors
    )
    return StartupVerdict(refusals, warnings)
