"""Run the schemathesis CLI against a live server as two users, and read back what it did.

Shared by the bounded suite run (tests/contract/test_schemathesis.py) and the longer one
(scripts/fuzz.py). The CLI is driven rather than the Python API because its run is the one
users reproduce (`st run`), and because only its engine runs all four phases with the
two-identity (WFC) authentication the object-level checks need.

The one exclusion, written into the generated config with its reason: 412 is an accepted answer
to schema-valid requests on the four operations that take `If-Match`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
HOOKS = "tests.contract.schemathesis_hooks"
PHASES = ("examples", "coverage", "fuzzing", "stateful")
_DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
_IF_MATCH_OPERATIONS = ["replaceTask", "updateTask", "toggleTaskCompleted", "deleteTask"]
_CONSISTENCY_TOKEN_OPERATIONS = ["listTasks", "getTask"]


@dataclass(frozen=True)
class Identity:
    name: str
    user_id: str
    token: str


@dataclass(frozen=True)
class Budget:
    seed: int
    max_examples: int
    stateful_max_steps: int
    workers: int = 1


@dataclass
class FuzzResult:
    returncode: int
    output: str
    seed: int
    operations: int = 0
    failures: int = 0
    cases_per_phase: Counter[str] = field(default_factory=Counter)
    phase_status: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    checks_run: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        phases = ", ".join(
            f"{p} {self.cases_per_phase[p]} ({self.phase_status.get(p, 'not run')})"
            for p in PHASES
        )
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"schemathesis seed {self.seed}: {self.operations} operations; test cases by "
            f"phase: {phases}; {len(self.checks_run)} checks; failures: {self.failures}; "
            f"responses by status: {codes}"
        )


def _toml(value: Any) -> str:
    return json.dumps(value)


def write_config(workdir: Path, owner: Identity, peer: Identity, budget: Budget) -> Path:
    auth = {
        "auth": [
            {
                "name": who.name,
                "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {who.token}"}],
            }
            for who in (owner, peer)
        ]
    }
    (workdir / "wfc.json").write_text(json.dumps(auth))
    config = f"""\
seed = {budget.seed}
workers = {budget.workers}
hooks = {_toml(HOOKS)}

[generation]
max-examples = {budget.max_examples}

[phases.stateful]
max-steps = {budget.stateful_max_steps}

# The owner's own path: with any other user id every request is a 403 and nothing is reached.
[parameters]
"path.user_id" = {_toml(owner.user_id)}

[auth.wfc]
path = "wfc.json"
peers = [{_toml(owner.name)}, {_toml(peer.name)}]

# EXCLUSION (one of two): a schema-valid `If-Match` that names no current entity tag must be
# answered 412 (RFC 9110, 13.1.1), and no schema can say which tag is current: that depends on
# the task's state, like the 404 for an unknown id that schemathesis already accepts. So 412 is
# accepted from positive data on exactly the four operations that take If-Match (and
# If-None-Match, whose `*` or current tag is 412 on a write for the same reason); the hook check
# `precondition_failed_only_with_if_match` fails any 412 sent without either.
[[operations]]
include-operation-id = {_toml(_IF_MATCH_OPERATIONS)}
checks.positive_data_acceptance.expected-statuses = {_toml([*_DEFAULT_ACCEPTED, "412"])}

# EXCLUSION (two of two): a schema-valid `Consistency-Token` the service did not issue must be
# answered 400 (SPEC "Scale": a malformed or altered token), and no schema can say which MACs
# are valid. So 400 is accepted from positive data on exactly the two reads that take the
# header; the hook check `bad_request_only_with_consistency_token` fails any such 400 sent
# without one.
[[operations]]
include-operation-id = {_toml(_CONSISTENCY_TOKEN_OPERATIONS)}
checks.positive_data_acceptance.expected-statuses = {_toml([*_DEFAULT_ACCEPTED, "400"])}
"""
    path = workdir / "schemathesis.toml"
    path.write_text(config)
    return path


def _read_report(path: Path) -> FuzzResult:
    """Counts from the NDJSON event stream (`--report ndjson`)."""
    result = FuzzResult(returncode=-1, output="", seed=0)
    for line in path.read_text().splitlines():
        ((kind, data),) = json.loads(line).items()
        if kind == "Initialize":
            result.seed = int(data["seed"])
        elif kind == "LoadingFinished":
            result.operations = int(data["statistic"]["operations"]["selected"])
        elif kind == "PhaseFinished" and data["phase"]["name"] in PHASES:
            result.phase_status[data["phase"]["name"]] = data["status"]
        elif kind == "ScenarioFinished":
            recorder = data["recorder"]
            result.cases_per_phase[str(data["phase"]).lower()] += len(recorder.get("cases", {}))
            for interaction in recorder.get("interactions", {}).values():
                if interaction.get("response"):
                    result.statuses[int(interaction["response"]["status_code"])] += 1
            for checks in recorder.get("checks", {}).values():
                for check in checks:
                    result.checks_run[check["name"]] += 1
                    if check["status"] == "failure":
                        result.failures += 1
    return result


def run(
    base_url: str,
    owner: Identity,
    peer: Identity,
    budget: Budget,
    workdir: Path,
    *,
    timeout_seconds: float = 900,
) -> FuzzResult:
    write_config(workdir, owner, peer, budget)
    report = workdir / "events.ndjson"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "FUZZ_OWNER_USER": owner.user_id,
        "FUZZ_OWNER_TOKEN": owner.token,
        "FUZZ_PEER_USER": peer.user_id,
        "FUZZ_PEER_TOKEN": peer.token,
        "FUZZ_WORKERS": str(budget.workers),
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            ",".join(PHASES),
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    result = _read_report(report) if report.exists() else FuzzResult(-1, "", budget.seed)
    result.returncode = proc.returncode
    result.output = proc.stdout + proc.stderr
    return result
