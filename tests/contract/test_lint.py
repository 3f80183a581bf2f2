"""The committed openapi.json passes the field's linters with zero errors.

Spectral (spectral:oas + the OWASP API Security ruleset) and Redocly CLI (`recommended`), pinned
in tests/contract/node/package.json. A warning may remain only when its rule is listed in the
ruleset with `warn` and the reason it is kept.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from tests.contract.conftest import report
from tests.contract.node_tools import NODE_DIR, bin_path, ensure_installed, node_env

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"


@pytest.fixture(scope="module")
def tools() -> Path:
    return ensure_installed()


def _kept_warnings(ruleset: str) -> set[str]:
    rules = yaml.safe_load((NODE_DIR / ruleset).read_text()).get("rules", {})
    return {name for name, severity in rules.items() if severity == "warn"}


def _run(tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=NODE_DIR, env=node_env(tools), capture_output=True, text=True,
        timeout=300, check=False,
    )


def test_spectral_oas_and_owasp_report_no_errors(tools: Path) -> None:
    result = _run(
        tools, bin_path(tools, "spectral"), "lint", "--ruleset", ".spectral.yaml",
        "--format", "json", "--quiet", "--fail-severity", "error", str(DOCUMENT),
    )
    problems = json.loads(result.stdout or "[]")
    by_severity = Counter(p["severity"] for p in problems)  # 0 error, 1 warn, 2 info, 3 hint
    warned = Counter(p["code"] for p in problems if p["severity"] == 1)
    report(
        f"spectral (spectral:oas + OWASP): {by_severity[0]} errors, {by_severity[1]} warnings "
        f"({', '.join(f'{code} x{n}' for code, n in sorted(warned.items()))})"
    )
    errors = [p for p in problems if p["severity"] == 0]
    assert errors == [], json.dumps(errors, indent=1)[:8000]
    assert result.returncode == 0, result.stderr
    assert set(warned) <= _kept_warnings(".spectral.yaml"), warned


def test_redocly_recommended_reports_no_errors(tools: Path) -> None:
    result = _run(
        tools, bin_path(tools, "redocly"), "lint", "--config", "redocly.yaml",
        "--format", "json", str(DOCUMENT),
    )
    problems = json.loads(result.stdout)["problems"]
    severities = Counter(p["severity"] for p in problems)
    warned = Counter(p["ruleId"] for p in problems if p["severity"] == "warn")
    report(
        f"redocly (recommended): {severities['error']} errors, {severities['warn']} warnings "
        f"({', '.join(f'{rule} x{n}' for rule, n in sorted(warned.items()))})"
    )
    errors = [p for p in problems if p["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=1)[:8000]
    assert result.returncode == 0, result.stderr
    assert set(warned) <= _kept_warnings("redocly.yaml"), warned
