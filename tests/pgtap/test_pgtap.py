"""The pgTAP suite (SQL alone, no Python in the proof) runs with pg_prove inside the test suite.

pg_prove runs exactly the command the README section "For DBAs" gives DBAs, against a
throwaway migrated database on a server with the pgTAP extension: TEST_DATABASE_URL when set;
otherwise the PostgreSQL 15 service on 127.0.0.1:5432 when it is reachable (Debian's
postgresql-15-pgtap, which `python3 dev.py test` installs), else this session's embedded server
if it has pgTAP.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from tests.pgtap.conftest import report
from tests.support.postgres import throwaway_database

ROOT = Path(__file__).resolve().parents[2]
SUITE = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests" / "pgtap").glob("*.sql"))
PG15_SERVICE = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class FileResult:
    plan: int | None = None
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class ProveRun:
    returncode: int
    output: str
    files: dict[str, FileResult]


def parse_tap(output: str) -> dict[str, FileResult]:
    """pg_prove --verbose output: a header line per file, then that file's TAP stream."""
    files: dict[str, FileResult] = {}
    current: FileResult | None = None
    for line in output.splitlines():
        header = re.match(r"^(tests/pgtap/\S+\.sql) \.+", line)
        if header:
            current = files.setdefault(header.group(1), FileResult())
        elif current is not None and (plan := re.match(r"^1\.\.(\d+)$", line)):
            current.plan = int(plan.group(1))
        elif current is not None and re.match(r"^ok \d+", line):
            current.passed.append(line)
        elif current is not None and re.match(r"^not ok \d+", line):
            current.failed.append(line)
    return files


def has_pgtap(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgtap'"
            ).fetchone()
            return bool(row and row[0])
    except psycopg.OperationalError:
        return False


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine without pgTAP; in CI the proof must run, so fail loudly."""
    if os.environ.get("CI"):
        pytest.fail(f"pgTAP suite cannot run in CI: {reason} (python3 dev.py test installs it)")
    pytest.skip(f"{reason}; `python3 dev.py test` installs it")


@pytest.fixture(scope="module")
def pgtap_admin_url(admin_url: str) -> str:
    if shutil.which("pg_prove") is None:
        unavailable("pg_prove is not installed (libtap-parser-sourcehandler-pgtap-perl)")
    configured = os.environ.get("TEST_DATABASE_URL")
    candidates = [configured] if configured else [PG15_SERVICE, admin_url]
    for url in candidates:
        if has_pgtap(url):
            return url
    tried = "TEST_DATABASE_URL" if configured else "the 127.0.0.1:5432 service and embedded"
    unavailable(
        f"no reachable PostgreSQL with the pgTAP extension (tried {tried}); "
        "install postgresql-15-pgtap"
    )


def prove(url: str, files: list[str]) -> ProveRun:
    result = subprocess.run(
        ["pg_prove", "--verbose", "--dbname", url, *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    return ProveRun(result.returncode, output, parse_tap(output))


@pytest.fixture(scope="module")
def suite_run(pgtap_admin_url: str) -> Iterator[ProveRun]:
    with throwaway_database(pgtap_admin_url, prefix="tasks_pgtap") as url:
        run = prove(url, SUITE)
    for name, result in run.files.items():
        report(f"{name}: plan {result.plan}, ok {len(result.passed)}, not ok {len(result.failed)}")
    total = sum(r.plan or 0 for r in run.files.values())
    passed = sum(len(r.passed) for r in run.files.values())
    report(f"files {len(run.files)}, planned {total}, ok {passed}, exit {run.returncode}")
    yield run


def test_pg_prove_reports_every_file_successful(suite_run: ProveRun) -> None:
    assert suite_run.returncode == 0, suite_run.output
    assert "All tests successful." in suite_run.output
    assert sorted(suite_run.files) == SUITE


@pytest.mark.parametrize("name", SUITE)
def test_every_planned_assertion_passes(suite_run: ProveRun, name: str) -> None:
    result = suite_run.files[name]
    assert result.failed == [], suite_run.output
    assert result.plan is not None and result.plan > 0
    assert len(result.passed) == result.plan


def test_the_isolation_proof_fails_when_a_policy_lets_everyone_read(
    pgtap_admin_url: str,
) -> None:
    with throwaway_database(pgtap_admin_url, prefix="tasks_pgtap_broken") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER POLICY task_select_own ON task USING (true)")
        run = prove(url, ["tests/pgtap/03_isolation.sql"])
    assert run.returncode != 0
    failed = run.files["tests/pgtap/03_isolation.sql"].failed
    assert any("alice sees only her own tasks" in line for line in failed)
