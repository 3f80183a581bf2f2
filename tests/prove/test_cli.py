"""`tasks-api prove`: the matrix for people, JSON for scripts, exit codes a script can act on
(0 every cell as declared, 1 any cell not, 2 could not run)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from cli.main import main
from tests.support.postgres import throwaway_database
from tests.support.server import free_port


@pytest.fixture(scope="module")
def opened_url(admin_url: str) -> Iterator[str]:
    """A throwaway database whose delete policy was opened, committed."""
    with throwaway_database(admin_url, prefix="tasks_prove_cli") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER POLICY task_delete_own ON task USING (true)")
        yield url


def test_a_clean_database_exits_zero_with_a_matrix_of_cells(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", "--database-url", database_url]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["TABLE", "COMMAND", "IDENTITY", "EXPECTED", "ACTUAL", "DENIED", "BY"]
    assert "0 violations" in rows[-1]
    assert not any("violation" in row for row in rows[:-1])


def test_a_clean_database_json_has_cells_and_no_violations(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", "--json", "--database-url", database_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["violations"] == []
    assert {"table", "command", "identity", "expected", "actual"} <= set(report["cells"][0])


def test_an_opened_policy_exits_one_and_names_table_command_and_identity(
    opened_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", "--json", "--database-url", opened_url]) == 1
    violations = json.loads(capsys.readouterr().out)["violations"]
    assert {(v["table"], v["command"], v["identity"]) for v in violations} == {
        ("public.task", "delete", identity) for identity in ("other", "none", "empty")
    }
    assert {(v["expected"], v["actual"]) for v in violations} == {("denied", "allowed")}


def test_an_opened_policy_is_marked_in_the_matrix(
    opened_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", "--database-url", opened_url]) == 1
    marked = [row.split() for row in capsys.readouterr().out.splitlines() if "<-" in row]
    assert {tuple(row[:5]) for row in marked} == {
        ("public.task", "delete", identity, "denied", "ALLOWED")
        for identity in ("other", "none", "empty")
    }


def test_an_unreachable_database_exits_two_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert main(["prove", "--database-url", url]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("tasks-api: cannot prove the database: ")


def test_a_database_without_tenant_tables_exits_two_with_one_line(
    admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with throwaway_database(admin_url, migrate=False, prefix="tasks_prove_empty") as url:
        assert main(["prove", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no tenant tables" in err


def test_a_role_that_cannot_become_tasks_app_exits_two_with_one_line(
    outsider_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prove", "--database-url", outsider_url]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "permission denied" in err
