"""The pgTAP run's figures (plan and results per file) in the end-of-run summary, without -s."""

from __future__ import annotations

import pytest

_REPORT: list[str] = []


def report(line: str) -> None:
    _REPORT.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("pgTAP (pg_prove)")
        for line in _REPORT:
            terminalreporter.write_line(line)
