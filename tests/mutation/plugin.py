"""pytest plugin (`-p tests.mutation.plugin`): sweep the collected tests over removed protections.

With TASKS_PROTECTION_SWEEP=rls (or filter) the plugin replaces the normal test loop: for
nothing removed and then for each protection of that layer, it runs every collected test once,
fully tearing down (so the session's database is created afresh, migrated, then broken) between
passes. It writes what failed in each pass as JSON to TASKS_PROTECTION_REPORT. Unset, the plugin
does nothing. Only tests/mutation/runner.py sets these variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _pytest.runner import runtestprotocol

from tests.mutation.protections import PROTECTIONS, FilterRemoval, Protection

SWEEP_ENV = "TASKS_PROTECTION_SWEEP"
REPORT_ENV = "TASKS_PROTECTION_REPORT"

_current: dict[str, Protection | None] = {"protection": None}


@pytest.fixture(scope="session", autouse=True)
def _protection_removed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Takes the current pass's database protection away once the session database exists."""
    protection = _current["protection"]
    if protection is not None and protection.layer == "rls":
        url = request.getfixturevalue("database_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(protection.remove_sql)
    yield


def _run_pass(session: pytest.Session, protection: Protection | None) -> dict[str, Any]:
    _current["protection"] = protection
    items = session.items
    ran, failed = 0, []
    with ExitStack() as stack:
        removal = None
        if protection is not None and protection.layer == "filter":
            removal = FilterRemoval(protection.function)
            stack.enter_context(removal.applied())
        for index, item in enumerate(items):
            following = items[index + 1] if index + 1 < len(items) else None
            reports = runtestprotocol(item, nextitem=following, log=False)
            ran += 1
            if any(report.failed for report in reports):
                failed.append(item.nodeid)
    _current["protection"] = None
    return {
        "removed": protection.name if protection else None,
        "ran": ran,
        "failed": failed,
        "predicates_removed": removal.removed if removal is not None else None,
    }


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    layer = os.environ.get(SWEEP_ENV)
    if not layer:
        return None
    passes = [_run_pass(session, None)]
    for protection in PROTECTIONS:
        if protection.layer == layer:
            passes.append(_run_pass(session, protection))
    Path(os.environ[REPORT_ENV]).write_text(json.dumps(passes, indent=1))
    return True
