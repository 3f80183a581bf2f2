"""The pinned Node tools of the contract tests (linters, openapi-typescript, tsc), installed once.

`npm ci` runs from tests/contract/node/package-lock.json into a cache directory outside the
checkout, keyed by a hash of the manifests, so the working tree never gets a `node_modules` and a
changed lockfile gets a fresh install. Without node, the tests that need it are skipped on a
developer machine and fail in CI (`CI=true`): CI must not pass by skipping the client's checks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
CACHE_ROOT = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tasks-api" / "contract-node"
)
_MANIFESTS = ("package.json", "package-lock.json")
_MARKER = ".installed"
_NPM_TIMEOUT_S = 600


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in _MANIFESTS:
        digest.update(name.encode() + (NODE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def require_node() -> tuple[str, str]:
    """`node` and `npm`, or a skip (a failure when CI=true)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm (Node.js >= 20.19) are needed for the OpenAPI lint and client tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run them", pytrace=False)
        pytest.skip(message)
    return node, npm


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed() -> Path:
    """The directory holding `node_modules` for the pinned tools (installed on first use)."""
    _, npm = require_node()
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    target = CACHE_ROOT / _lock_hash()
    with _locked(CACHE_ROOT / f".{target.name}.lock"):
        if not (target / _MARKER).is_file():
            shutil.rmtree(target, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(dir=CACHE_ROOT, prefix=f".{target.name}-"))
            try:
                for name in _MANIFESTS:
                    shutil.copy2(NODE_DIR / name, staging / name)
                proc = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                    cwd=staging,
                    capture_output=True,
                    text=True,
                    timeout=_NPM_TIMEOUT_S,
                    check=False,
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"npm ci failed:\n{proc.stdout}\n{proc.stderr}")
                (staging / _MARKER).write_text(_lock_hash() + "\n")
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target


def bin_path(install: Path, name: str) -> str:
    return str(install / "node_modules" / ".bin" / name)


def node_env(install: Path) -> dict[str, str]:
    """Lets the rulesets and the client scenario in NODE_DIR resolve the installed packages."""
    return {**os.environ, "NODE_PATH": str(install / "node_modules"), "NO_COLOR": "1"}
