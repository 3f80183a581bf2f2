"""Fixtures for the audit: databases to break, and a private cluster for breaking roles.

Table-level breakage happens inside a transaction that is rolled back after the test (the audit
judges uncommitted changes: it runs in savepoints). Role attributes and memberships are
cluster-wide, so those tests use a private embedded cluster started once per session, never the
shared server.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from db.audit import Finding, run_audit
from db.audit.rules import BY_ID
from tests.support.postgres import embedded_cluster, throwaway_database


@pytest.fixture(scope="session")
def audit_db(admin_url: str) -> Iterator[str]:
    """A migrated database only the audit tests touch (their breakage is never committed)."""
    with throwaway_database(admin_url, prefix="tasks_audit") as url:
        yield url


@pytest.fixture
def conn(audit_db: str) -> Iterator[psycopg.Connection]:
    """A connection in an open transaction that is rolled back after the test."""
    with psycopg.connect(audit_db) as connection:
        yield connection
        connection.rollback()


@pytest.fixture(scope="session")
def private_admin_url() -> Iterator[str]:
    """A private PostgreSQL cluster whose roles the tests may break (and restore)."""
    with embedded_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def private_db(private_admin_url: str) -> Iterator[str]:
    with throwaway_database(private_admin_url, prefix="tasks_audit_roles") as url:
        yield url


@pytest.fixture
def private_conn(private_db: str) -> Iterator[psycopg.Connection]:
    """Like `conn`, on the private cluster: ALTER ROLE here is rolled back with the test."""
    with psycopg.connect(private_db) as connection:
        yield connection
        connection.rollback()


def findings_of(conn: psycopg.Connection, rule_id: str) -> list[Finding]:
    report = run_audit(conn, rules=[BY_ID[rule_id]])
    assert report.errors == ()
    return list(report.findings)


def only_finding(conn: psycopg.Connection, rule_id: str) -> Finding:
    found = findings_of(conn, rule_id)
    assert len(found) == 1, found
    return found[0]


def assert_fix_repairs(conn: psycopg.Connection, finding: Finding) -> None:
    """The finding's fix SQL, run as the migrator, makes the rule quiet about that object."""
    conn.execute(finding.fix.encode())
    assert [f for f in findings_of(conn, finding.rule) if f.object == finding.object] == []
