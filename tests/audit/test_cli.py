"""`tasks-api audit`: a table for people, `{"findings": [...]}` for machines, and exit codes a
script can act on (0 clean, 1 findings, 2 could not audit)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from cli.main import main
from tests.support.postgres import throwaway_database
from tests.support.server import TASKS_API, base_env, free_port


@pytest.fixture(scope="module")
def broken_url(admin_url: str) -> Iterator[str]:
    """A database broken twice, committed: FORCE removed and TRUNCATE granted."""
    with throwaway_database(admin_url, prefix="tasks_audit_cli") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE task NO FORCE ROW LEVEL SECURITY")
            conn.execute("GRANT TRUNCATE ON task TO tasks_app")
        yield url


def test_clean_database_exits_zero_and_says_so(
    audit_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--database-url", audit_db]) == 0
    assert capsys.readouterr().out.strip() == (
        "no findings: the live database enforces what policies/ declares"
    )


def test_clean_database_json_has_an_empty_findings_list(
    audit_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--json", "--database-url", audit_db]) == 0
    assert json.loads(capsys.readouterr().out) == {"findings": []}


def test_broken_database_exits_one_with_a_table_of_findings(
    broken_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--database-url", broken_url]) == 1
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["SEVERITY", "RULE", "OBJECT"]
    assert any(row.split()[:3] == ["ERROR", "rls_not_forced", "public.task"] for row in rows)
    assert "fix: ALTER TABLE public.task FORCE ROW LEVEL SECURITY;" in out
    assert rows[-1] == "4 finding(s): 4 ERROR"


def test_broken_database_json_names_rule_object_severity_explanation_and_fix(
    broken_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--json", "--database-url", broken_url]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {(f["rule"], f["object"]) for f in findings} == {
        ("rls_not_forced", "public.task"),
        ("excess_table_privilege", "public.task TRUNCATE to tasks_app"),
        ("drift", "public.task"),
        ("drift", "public.task TRUNCATE to tasks_app"),
    }
    for finding in findings:
        assert set(finding) == {"rule", "severity", "object", "explanation", "fix"}
        assert finding["severity"] == "ERROR"
        assert finding["explanation"] and finding["fix"]


def test_unreachable_database_exits_two_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert main(["audit", "--database-url", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tasks-api: cannot audit the database:")
    assert len(err.splitlines()) == 1


def test_without_a_flag_it_audits_migration_database_url(broken_url: str) -> None:
    """The console script, as a DBA runs it: the owner's URL from the environment."""
    result = subprocess.run(
        [str(TASKS_API), "audit", "--json"],
        env=base_env(MIGRATION_DATABASE_URL=broken_url, DATABASE_URL="postgresql://nowhere/x"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert len(json.loads(result.stdout)["findings"]) == 4
