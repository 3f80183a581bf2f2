"""The self-audit `tasks-api serve` runs before it accepts a request.

It reuses the audit rules: any ERROR finding (runtime role too powerful, a tenant table without
enabled + forced RLS or its policies, privileges contrary to policies/) means isolation could
not hold, and the service refuses to start. WARN and INFO findings are only reported.

Each read replica is audited the same way (rows are read there too). A replica that cannot be
reached is not a refusal: it starts out of rotation, and reads go to the primary until it
answers. One that answers but breaks a rule is, and the refusal names it (label and host, never
the URL, which may carry a password). On a standby the drift rule cannot create its scratch
schema (read-only); that rule reports it could not run, a warning like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from db.audit.runner import audit_database, libpq_url
from db.errors import first_line
from db.replicas import public_host


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


@dataclass(frozen=True)
class ReplicaVerdict:
    label: str
    host: str
    # None when the replica could not be reached (not a refusal: it starts out of rotation).
    verdict: StartupVerdict | None
    unreachable: str = ""


def replica_self_audit(
    urls: Sequence[str], connect_timeout_seconds: int = 5
) -> list[ReplicaVerdict]:
    """`self_audit` for each replica URL, labelled `replica0`, `replica1`, ... as in metrics."""
    verdicts = []
    for index, url in enumerate(urls):
        label, host = f"replica{index}", public_host(url)
        try:
            psycopg.connect(libpq_url(url), connect_timeout=connect_timeout_seconds).close()
        except psycopg.OperationalError as exc:
            verdicts.append(ReplicaVerdict(label, host, None, first_line(exc)))
            continue
        verdicts.append(ReplicaVerdict(label, host, self_audit(url)))
    return verdicts
