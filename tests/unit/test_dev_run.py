"""dev.py run: the README's one command becomes the service rather than starting it as a child.

A child would outlive a SIGTERM sent to `python3 dev.py run` (by a supervisor, or `kill`),
keeping the port and the embedded PostgreSQL's data directory; the service handles SIGTERM
itself (tests/cli/test_serve.py: SIGTERM stops serve and its embedded PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import dev


class _Exec(Exception):
    """Raised in place of exec, which would replace the test process."""


def test_run_replaces_itself_with_tasks_api_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # cmd_run changes into the project; restored afterwards
    monkeypatch.setattr(dev, "ensure_venv", lambda extras: None)
    execs: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        execs.append((path, argv))
        raise _Exec

    def call(*_: Any, **__: Any) -> int:
        raise AssertionError("tasks-api serve was started as a child of dev.py")

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.setattr(subprocess, "call", call)
    with pytest.raises(_Exec):
        dev.cmd_run(["--port", "9000"])
    tasks_api = str(dev.VENV / "bin" / "tasks-api")
    assert execs == [(tasks_api, [tasks_api, "serve", "--port", "9000"])]
    assert Path.cwd() == dev.ROOT
