"""Row-level security holds on the standby by itself: SQL alone, as tasks_app, sees own rows only.

A standby replays the primary's catalog, so the policies, FORCE and the role's attributes are the
same there; these tests prove it on the running standby rather than assume it.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.replicas.conftest import owner_insert
from tests.support.standby import ReplicatedPair


@pytest.fixture
def two_users(primary_url: str, pair: ReplicatedPair) -> tuple[str, str]:
    mine, theirs = f"sam-{uuid.uuid4().hex[:8]}", f"tom-{uuid.uuid4().hex[:8]}"
    owner_insert(primary_url, mine, "sam's")
    owner_insert(primary_url, theirs, "tom's")
    pair.wait_for_replay()
    return mine, theirs


def visible_titles(standby_url: str, user_id: str | None) -> list[str]:
    with psycopg.connect(standby_url) as conn:
        conn.execute("SELECT set_config('role', 'tasks_app', true)")
        if user_id is not None:
            conn.execute("SELECT set_config('app.user_id', %s, true)", (user_id,))
        rows = conn.execute("SELECT title FROM task ORDER BY title").fetchall()
        conn.rollback()
    return [str(row[0]) for row in rows]


def test_tasks_app_on_the_standby_sees_only_its_own_rows(
    standby_url: str, two_users: tuple[str, str]
) -> None:
    mine, _ = two_users
    assert visible_titles(standby_url, mine) == ["sam's"]


def test_tasks_app_on_the_standby_sees_nothing_without_an_identity(
    standby_url: str, two_users: tuple[str, str]
) -> None:
    assert visible_titles(standby_url, None) == []


def test_the_standby_passes_the_startup_self_audit(standby_url: str) -> None:
    from db.audit.startup import replica_self_audit

    (verdict,) = replica_self_audit([standby_url])
    assert verdict.verdict is not None
    assert verdict.verdict.refusals == ()


def test_the_drift_rule_on_a_standby_reports_it_cannot_run_rather_than_a_finding(
    standby_url: str,
) -> None:
    """Drift needs a scratch schema, which a read-only standby cannot create; its catalog is
    the primary's, where the rule does run."""
    from db.audit.startup import replica_self_audit

    (verdict,) = replica_self_audit([standby_url])
    assert verdict.verdict is not None
    assert any(w.startswith("could not run audit rule drift:") for w in verdict.verdict.warnings)
