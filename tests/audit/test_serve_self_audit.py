"""`tasks-api serve` refuses to start, one clear line per problem, when isolation could not hold.

Each test breaks a database for real (committed), points a real `tasks-api serve` process at it
and watches the refusal: a non-zero exit before the port is bound, and the rule that fired.
Role breakage happens on the private cluster and is undone afterwards.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import psycopg
import pytest

from tests.support.postgres import throwaway_database
from tests.support.server import TASKS_API, base_env, free_port, serve


def serve_once(database_url: str, *, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = base_env(
        DATABASE_URL=database_url,
        JWT_SECRET=secret or secrets.token_urlsafe(48),
        RATE_LIMIT="off",
    )
    return subprocess.run(
        [str(TASKS_API), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def refusal_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return [
        line.removeprefix("tasks-api: refusing to start: ")
        for line in result.stderr.splitlines()
        if line.startswith("tasks-api: refusing to start: ")
    ]


@contextmanager
def committed(url: str, breakage: str, repair: str) -> Iterator[None]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(breakage.encode())
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(repair.encode())


@pytest.fixture
def broken_db(private_admin_url: str) -> Iterator[str]:
    """A fresh migrated database on the private cluster, to break at table level."""
    with throwaway_database(private_admin_url, prefix="tasks_serve_audit") as url:
        yield url


def break_it(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def test_serve_refuses_a_superuser_runtime_role(private_db: str) -> None:
    with committed(
        private_db, "ALTER ROLE tasks_app SUPERUSER", "ALTER ROLE tasks_app NOSUPERUSER"
    ):
        lines = refusal_lines(serve_once(private_db))
    assert any(line.startswith("runtime_role_superuser: role tasks_app:") for line in lines)


def test_serve_refuses_a_runtime_role_with_bypassrls(private_db: str) -> None:
    with committed(
        private_db, "ALTER ROLE tasks_app BYPASSRLS", "ALTER ROLE tasks_app NOBYPASSRLS"
    ):
        lines = refusal_lines(serve_once(private_db))
    assert any(line.startswith("runtime_role_bypassrls: role tasks_app:") for line in lines)


def test_serve_refuses_a_runtime_role_inside_a_superuser_role(private_db: str) -> None:
    with committed(
        private_db,
        "CREATE ROLE ops_admin SUPERUSER NOLOGIN; GRANT ops_admin TO tasks_app",
        "REVOKE ops_admin FROM tasks_app; DROP ROLE ops_admin",
    ):
        lines = refusal_lines(serve_once(private_db))
    assert any(
        line.startswith("runtime_role_member_of_privileged: role tasks_app -> ops_admin:")
        for line in lines
    )


def test_serve_refuses_a_runtime_role_that_owns_a_tenant_table(broken_db: str) -> None:
    break_it(broken_db, "ALTER TABLE task OWNER TO tasks_app")
    lines = refusal_lines(serve_once(broken_db))
    assert any(line.startswith("runtime_role_owns_objects: table public.task:") for line in lines)


def test_serve_refuses_a_tenant_table_without_rls(broken_db: str) -> None:
    break_it(broken_db, "ALTER TABLE task DISABLE ROW LEVEL SECURITY")
    lines = refusal_lines(serve_once(broken_db))
    assert any(line.startswith("rls_not_enabled: public.task:") for line in lines)


def test_serve_refuses_a_tenant_table_whose_rls_is_not_forced(broken_db: str) -> None:
    break_it(broken_db, "ALTER TABLE task NO FORCE ROW LEVEL SECURITY")
    lines = refusal_lines(serve_once(broken_db))
    assert any(line.startswith("rls_not_forced: public.task:") for line in lines)


def test_serve_refuses_a_tenant_table_missing_a_policy(broken_db: str) -> None:
    break_it(broken_db, "DROP POLICY task_delete_own ON task")
    lines = refusal_lines(serve_once(broken_db))
    assert lines == [
        "drift: policy task_delete_own on public.task: is declared in policies/ but missing live"
    ]


def test_serve_refuses_privileges_contrary_to_the_declared_grants(broken_db: str) -> None:
    break_it(broken_db, "GRANT TRUNCATE ON task TO tasks_app")
    lines = refusal_lines(serve_once(broken_db))
    assert any(
        line.startswith("excess_table_privilege: public.task TRUNCATE to tasks_app:")
        for line in lines
    )
    assert any(line.startswith("drift: public.task TRUNCATE to tasks_app:") for line in lines)


def test_serve_refuses_a_weak_secret_in_one_line(private_db: str) -> None:
    result = serve_once(private_db, secret="too-short")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], (
        "the refusal must be exactly one line"
    )
    assert "JWT_SECRET must be at least 32 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_unmigrated_database_naming_the_command(private_admin_url: str) -> None:
    with throwaway_database(private_admin_url, migrate=False) as url:
        result = serve_once(url)
    assert result.returncode != 0
    assert "run `tasks-api migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_starts_despite_a_warning_and_logs_it(broken_db: str, tmp_path: Path) -> None:
    break_it(broken_db, "DROP INDEX task_user_created_idx")
    env = base_env(DATABASE_URL=broken_db, JWT_SECRET=secrets.token_urlsafe(48), RATE_LIMIT="off")
    with serve(env, tmp_path / "serve.log") as server:
        assert httpx2.get(f"{server.base_url}/readyz").status_code == 200
        log = server.log()
    assert "self-audit: policy_column_unindexed: public.task.user_id:" in log
    assert "refusing to start" not in log
