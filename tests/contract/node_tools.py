"""The pinned Node tools of the contract tests (linters, openapi-typescript, tsc), installed once.

`npm ci` runs from tests/contract/node/package-lock.json into a cache directory outside the
checkout, keyed by a hash of the manifests, so the working tree never gets a `node_modules` and a
changed lockfile gets a fresh install. Without node, the tests that need it are skipped on a
developer machine and fail in CI (`CI=true`): CI must not pass by skipping the client's checks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.npm import CACHE_ROOT as NPM_CACHE_ROOT
from tests.support.npm import npm_ci_cached

NODE_DIR = Path(__file__).resolve().parent / "node"
CACHE_ROOT = NPM_CACHE_ROOT / "contract-node"
_NPM_TIMEOUT_S = 600


def require_node() -> tuple[str, str]:
    """`node` and `npm`, or a skip (a failure when CI=true)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm (Node.js >= 20.19) are needed for the OpenAPI lint and client tests"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run them", pytrace=False)
        pytest.skip(message)
    return node, npm


def ensure_installed() -> Path:
    """The directory holding `node_modules` for the pinned tools (installed on first use)."""
    _, npm = require_node()
    return npm_ci_cached(NODE_DIR, CACHE_ROOT, npm, timeout=_NPM_TIMEOUT_S)


def bin_path(install: Path, name: str) -> str:
    return str(install / "node_modules" / ".bin" / name)


def node_env(install: Path) -> dict[str, str]:
    """Lets the rulesets and the client scenario in NODE_DIR resolve the installed packages."""
    return {**os.environ, "NODE_PATH": str(install / "node_modules"), "NO_COLOR": "1"}
