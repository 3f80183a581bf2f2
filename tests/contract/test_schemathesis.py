"""Schemathesis against a live `tasks-api serve`, as two users: it must find nothing.

All four phases (examples, coverage, fuzzing, stateful) and every check, built-in and ours
(tests/contract/schemathesis_hooks.py), with a fixed seed and example count so the run is
reproducible and bounded. `scripts/fuzz.py` runs the same thing for longer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis

from db.models import IDEMPOTENCY_KEY_PATTERN
from tests.contract import schemathesis_hooks
from tests.contract.conftest import report
from tests.contract.fuzzing import PHASES, Budget, Identity, run
from tests.support.server import RunningServer

SUITE_BUDGET = Budget(seed=20261127, max_examples=15, stateful_max_steps=15)
OUR_CHECKS = {
    "foreign_task_is_a_missing_task",
    "peer_never_lists_owner_tasks",
    "precondition_failed_only_with_if_match",
    "bad_request_only_with_consistency_token",
}


def test_schemathesis_finds_nothing_with_two_users(
    live_api: RunningServer, identity: Callable[[str], Identity], tmp_path: Path
) -> None:
    result = run(live_api.base_url, identity("alice"), identity("bob"), SUITE_BUDGET, tmp_path)
    report(result.summary())
    assert result.returncode == 0, result.output[-12000:]
    assert result.failures == 0, result.output[-12000:]
    assert result.operations == 9
    for phase in PHASES:
        assert result.phase_status.get(phase) == "success", (phase, result.phase_status)
        assert result.cases_per_phase[phase] > 0, phase
    assert set(result.checks_run) >= OUR_CHECKS, result.checks_run
    assert 201 in result.statuses and 422 in result.statuses, result.statuses


@pytest.fixture
def owner_task(
    live_api: RunningServer, identity: Callable[[str], Identity]
) -> tuple[Identity, str]:
    owner = identity("alice")
    created = httpx2.post(
        f"{live_api.base_url}/api/{owner.user_id}/tasks",
        json={"title": "mine"},
        headers={"Authorization": f"Bearer {owner.token}"},
    )
    assert created.status_code == 201
    return owner, created.json()["id"]


def _owner_read(
    base_url: str, owner: Identity, task_id: str
) -> tuple[schemathesis.Case[Any], schemathesis.Response]:
    document = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operation = document["/api/{user_id}/tasks/{task_id}"]["GET"]
    case = operation.Case(path_parameters={"user_id": owner.user_id, "task_id": task_id})
    response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {owner.token}"})
    assert response.status_code == 200
    return case, response


def test_tenant_check_passes_when_the_peer_gets_the_missing_task_404(
    live_api: RunningServer,
    owner_task: tuple[Identity, str],
    identity: Callable[[str], Identity],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner, task_id = owner_task
    peer = identity("bob")
    for name, value in _hook_env(owner, peer).items():
        monkeypatch.setenv(name, value)
    case, response = _owner_read(live_api.base_url, owner, task_id)
    assert schemathesis_hooks.foreign_task_is_a_missing_task(None, response, case) is True


def test_tenant_check_fails_when_the_peer_can_read_the_owners_task(
    live_api: RunningServer, owner_task: tuple[Identity, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "peer" that is the owner under another name stands for a server that ignores tenants.
    owner, task_id = owner_task
    for name, value in _hook_env(owner, owner).items():
        monkeypatch.setenv(name, value)
    case, response = _owner_read(live_api.base_url, owner, task_id)
    with pytest.raises(AssertionError, match="not 404"):
        schemathesis_hooks.foreign_task_is_a_missing_task(None, response, case)


def _hook_env(owner: Identity, peer: Identity) -> dict[str, str]:
    return {
        "FUZZ_OWNER_USER": owner.user_id,
        "FUZZ_OWNER_TOKEN": owner.token,
        "FUZZ_PEER_USER": peer.user_id,
        "FUZZ_PEER_TOKEN": peer.token,
    }


def test_every_valid_idempotency_key_is_sent_once() -> None:
    generated = "5f0c2a4e-9a51-4c1e-9d0b-2f4c8f6b1e7a"
    first, second = schemathesis_hooks.key_for(generated), schemathesis_hooks.key_for(generated)
    assert first != second
    assert first.startswith(generated) and second.startswith(generated)
    assert all(re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key) for key in (first, second))


def test_an_invalid_idempotency_key_is_sent_as_generated() -> None:
    assert schemathesis_hooks.key_for("with space") == "with space"
