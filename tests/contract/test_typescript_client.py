"""A typed TypeScript client, generated from the committed document, works against the service.

openapi-typescript turns openapi.json into types; tests/contract/node/client.ts uses them through
openapi-fetch (create, list with filters and the `Link` cursor, get with `ETag`, revalidation
with `If-None-Match` (304 for the task and the list, 412 for `*` on a write), a conditional
update, complete, delete, and the problem+json errors 401/403/404/422). `tsc --strict` must
accept it without casts (`skipLibCheck` skips only the installed packages' declaration files;
the generated schema.ts is checked with client.ts), and Node runs it against a live
`tasks-api serve` on the test database.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.contract.conftest import report
from tests.contract.fuzzing import Identity
from tests.contract.node_tools import NODE_DIR, bin_path, ensure_installed, node_env, require_node
from tests.support.server import RunningServer

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"


@pytest.fixture(scope="module")
def compiled_client() -> Iterator[Path]:
    """client.ts type-checked and compiled, next to the generated types, inside the install
    (Node resolves `openapi-fetch` from the nearest `node_modules` up the tree)."""
    tools = ensure_installed()
    workdir = Path(tempfile.mkdtemp(dir=tools, prefix="client-"))
    try:
        env = node_env(tools)
        generate = subprocess.run(
            [bin_path(tools, "openapi-typescript"), str(DOCUMENT), "-o", "schema.ts"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert generate.returncode == 0, generate.stdout + generate.stderr
        for name in ("client.ts", "tsconfig.json"):
            shutil.copy2(NODE_DIR / name, workdir / name)
        typecheck = subprocess.run(
            [bin_path(tools, "tsc"), "--project", "tsconfig.json"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=180, check=False,
        )
        assert typecheck.returncode == 0, typecheck.stdout + typecheck.stderr
        yield workdir / "out" / "client.js"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_generated_client_runs_the_scenario_against_the_live_service(
    compiled_client: Path, live_api: RunningServer, identity: Callable[[str], Identity]
) -> None:
    node, _ = require_node()
    user, other = identity("alice"), identity("bob")
    result = subprocess.run(
        [node, str(compiled_client)],
        env={
            **node_env(compiled_client.parents[2]),
            "BASE_URL": live_api.base_url,
            "USER_ID": user.user_id,
            "TOKEN": user.token,
            "OTHER_USER_ID": other.user_id,
            "OTHER_TOKEN": other.token,
        },
        capture_output=True, text=True, timeout=120, check=False,
    )
    steps = [line for line in result.stdout.splitlines() if line.startswith("ok ")]
    for line in steps:
        report(f"typescript client: {line}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in steps] == [
        "ok create", "ok list", "ok get", "ok read your writes", "ok revalidate",
        "ok conditional update",
        "ok complete", "ok errors", "ok delete",
    ]
