"""On a freshly migrated database every rule is quiet: the audit's baseline is exit 0."""

from __future__ import annotations

import psycopg
import pytest

from db.audit import Report, run_audit
from db.audit.rules import RULES


@pytest.fixture(scope="module")
def clean_report(audit_db: str) -> Report:
    with psycopg.connect(audit_db) as conn:
        return run_audit(conn)


@pytest.mark.parametrize("rule", [r.id for r in RULES])
def test_rule_is_quiet_on_the_migrated_database(clean_report: Report, rule: str) -> None:
    assert [f for f in clean_report.findings if f.rule == rule] == []


def test_every_rule_ran_on_the_migrated_database(clean_report: Report) -> None:
    assert clean_report.errors == ()


def test_the_audit_leaves_no_trace(audit_db: str) -> None:
    with psycopg.connect(audit_db, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM pg_namespace").fetchone()
        run_audit(conn)
        after = conn.execute("SELECT count(*) FROM pg_namespace").fetchone()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert before == after
