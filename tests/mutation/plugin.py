"""pytest plugin (`-p tests.mutation.plugin`): sweep the collected tests over removed protections.

With TASKS_PROTECTION_SWEEP=rls (or filter) the plugin replaces the normal test loop: for
nothing removed and then for each protection of that layer (of its TASKS_PROTECTION_SHARD), it
runs every collected test once, fully tearing down between passes (so the session's database is
created afresh, migrated, then broken). It writes what failed in each pass as JSON to
TASKS_PROTECTION_REPORT. Unset, the plugin does nothing; only tests/mutation/runner.py sets
these variables.
"""

from __future__ import annotations

import json
import os
import time
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
SHARD_ENV = "TASKS_PROTECTION_SHARD"  # "k/n": this process sweeps every n-th removal from k

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
    started = time.monotonic()
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
        "seconds": round(time.monotonic() - started, 2),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    layer = os.environ.get(SWEEP_ENV)
    if not layer:
        return None
    shard, shards = (int(n) for n in os.environ.get(SHARD_ENV, "0/1").split("/"))
    mine = [p for p in PROTECTIONS if p.layer == layer][shard::shards]
    passes = [_run_pass(session, None)] if shard == 0 else []
    passes += [_run_pass(session, protection) for protection in mine]
    Path(os.environ[REPORT_ENV]).write_text(json.dumps(passes, indent=1))
    return True
