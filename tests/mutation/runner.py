"""Remove each protection in turn, run the tests that should notice, and report what failed.

    python -m tests.mutation.runner      # prints "protection removed -> tests that failed"

One pytest subprocess per layer (database policies/flags/grants; handler filters) sweeps its
suite over a baseline pass and one pass per removed protection (see plugin.py), against the
cluster named by TEST_DATABASE_URL or a private embedded one. Every pass gets its own freshly
migrated throwaway database, so removals never affect each other or anyone else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.plugin import REPORT_ENV, SHARD_ENV, SWEEP_ENV
from tests.mutation.protections import FILTER_SUITE, PROTECTIONS, SQL_SUITE

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"rls": SQL_SUITE, "filter": FILTER_SUITE}
# (layer, shard): the database layer has the most removals and the cheapest passes.
SWEEPS = (("rls", "0/2"), ("rls", "1/2"), ("filter", "0/1"))


@dataclass(frozen=True)
class Outcome:
    removed: str | None  # None: the baseline pass
    layer: str
    ran: int
    failed: tuple[str, ...]
    predicates_removed: int | None


def sweep(admin_url: str, layer: str, shard: str = "0/1") -> list[Outcome]:
    with tempfile.TemporaryDirectory(prefix="tasks-protections-") as tmp:
        report = Path(tmp) / "passes.json"
        env = {
            **os.environ,
            "TEST_DATABASE_URL": admin_url,
            SWEEP_ENV: layer,
            SHARD_ENV: shard,
            REPORT_ENV: str(report),
        }
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "tests.mutation.plugin",
                "-p",
                "no:cacheprovider",
                "-q",
                *LAYERS[layer],
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if not report.exists():
            raise RuntimeError(
                f"the {layer} sweep did not finish:\n{completed.stdout}\n{completed.stderr}"
            )
        passes = json.loads(report.read_text())
    return [
        Outcome(p["removed"], layer, p["ran"], tuple(p["failed"]), p["predicates_removed"])
        for p in passes
    ]


def run_all(admin_url: str) -> list[Outcome]:
    """Baselines first, then removals in PROTECTIONS order."""
    with ThreadPoolExecutor(max_workers=len(SWEEPS)) as pool:
        sweeps = [pool.submit(sweep, admin_url, layer, shard) for layer, shard in SWEEPS]
        outcomes = [outcome for future in sweeps for outcome in future.result()]
    order = {p.name: n for n, p in enumerate(PROTECTIONS)}
    baselines = [o for o in outcomes if o.removed is None]
    removals = sorted(
        (o for o in outcomes if o.removed is not None), key=lambda o: order[o.removed or ""]
    )
    return baselines + removals


def table(outcomes: list[Outcome]) -> str:
    lines = ["protection removed → tests that failed"]
    for outcome in outcomes:
        name = outcome.removed or f"nothing ({outcome.layer} baseline)"
        lines.append(f"{name}: {len(outcome.failed)} of {outcome.ran} failed")
        shown = [nodeid.rpartition("/")[2] for nodeid in outcome.failed]
        lines += [f"    {nodeid}" for nodeid in shown]
    return "\n".join(lines)


def main() -> int:
    from tests.support.postgres import embedded_cluster

    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        outcomes = run_all(configured)
    else:
        with embedded_cluster() as url:
            outcomes = run_all(url)
    print(table(outcomes))
    baselines_clean = all(not o.failed for o in outcomes if o.removed is None)
    all_caught = all(o.failed for o in outcomes if o.removed is not None)
    return 0 if baselines_clean and all_caught else 1


if __name__ == "__main__":
    raise SystemExit(main())
