"""The migrations, linted as DBAs lint them: squawk over the SQL Alembic emits and policies/.

The SQL is what `alembic upgrade head --sql` prints (offline mode: the exact statements a
migration would run, in its one transaction). Squawk is pinned in node/package-lock.json and
installed once, outside the checkout. Exemptions live in the two config files, one reason each.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from db.catalog import POLICIES_DIR
from db.migrate import PROJECT_ROOT
from tests.support.npm import CACHE_ROOT, npm_ci_cached

HERE = Path(__file__).resolve().parent
MIGRATIONS_CONFIG = HERE / "squawk-migrations.toml"
POLICIES_CONFIG = HERE / "squawk-policies.toml"


@pytest.fixture(scope="module")
def squawk() -> str:
    npm = shutil.which("npm")
    supported = (platform.system(), platform.machine()) == ("Linux", "x86_64")
    if npm is None or not supported:
        message = "squawk needs npm on Linux x86-64 (its pinned binary package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run it", pytrace=False)
        pytest.skip(message)
    install = npm_ci_cached(HERE / "node", CACHE_ROOT / "migration-lint", npm, timeout=600)
    return str(install / "node_modules" / "@squawk-cli" / "linux-x64" / "bin" / "squawk")


@pytest.fixture(scope="module")
def migration_sql(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    path = tmp_path_factory.mktemp("migrations") / "upgrade_head.sql"
    path.write_text(result.stdout)
    return path


def lint(squawk: str, config: Path, *paths: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [squawk, "--reporter", "json", "--config", str(config), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def summary(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['file']}:{f['line']} {f['rule_name']}: {f['message']}" for f in findings]


def test_the_offline_migration_is_the_whole_upgrade(migration_sql: Path) -> None:
    text = migration_sql.read_text()
    assert "CREATE TABLE task" in text and "CREATE TABLE idempotency_key" in text
    assert text.lstrip().startswith("BEGIN;") and text.rstrip().endswith("COMMIT;")


def test_the_sql_the_migrations_emit_has_no_squawk_findings(
    squawk: str, migration_sql: Path
) -> None:
    assert summary(lint(squawk, MIGRATIONS_CONFIG, migration_sql)) == []


def test_the_policy_files_have_no_squawk_findings(squawk: str) -> None:
    assert summary(lint(squawk, POLICIES_CONFIG, *sorted(POLICIES_DIR.glob("*.sql")))) == []


def test_squawk_still_finds_a_lock_hazard_under_the_migration_config(
    squawk: str, tmp_path: Path
) -> None:
    """The config exempts named rules only: a blocking change without timeouts is caught."""
    hazard = tmp_path / "hazard.sql"
    hazard.write_text("BEGIN;\nALTER TABLE task ADD COLUMN priority int NOT NULL;\nCOMMIT;\n")
    rules = {f["rule_name"] for f in lint(squawk, MIGRATIONS_CONFIG, hazard)}
    assert {"require-lock-timeout", "adding-required-field"} <= rules


def test_the_migrations_would_be_caught_without_their_timeouts(
    squawk: str, migration_sql: Path, tmp_path: Path
) -> None:
    without = tmp_path / "without_timeouts.sql"
    without.write_text(re.sub(r"SET LOCAL \w+_timeout = '[^']*';", "", migration_sql.read_text()))
    rules = {f["rule_name"] for f in lint(squawk, MIGRATIONS_CONFIG, without)}
    assert "require-lock-timeout" in rules


@pytest.mark.parametrize("config", [MIGRATIONS_CONFIG, POLICIES_CONFIG], ids=lambda p: p.name)
def test_every_exemption_comes_with_a_reason(config: Path) -> None:
    lines = config.read_text().splitlines()
    for rule in tomllib.loads(config.read_text())["excluded_rules"]:
        at = next(i for i, line in enumerate(lines) if f'"{rule}"' in line)
        above = lines[at - 1].strip()
        assert above.startswith("#") or lines[at - 2].strip().startswith("#"), rule
