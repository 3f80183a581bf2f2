#!/usr/bin/env python3
"""One-command developer entry point that needs nothing but Python 3.11+.

    python3 dev.py run     # set up .venv, start the API on an embedded PostgreSQL
    python3 dev.py test    # set up .venv (and test tools), run the whole test suite

It creates `.venv` from pyproject.toml (re-installing when pyproject.toml changes) and, for the
tests, installs the Debian packages the suite drives for real (PgBouncer, pgTAP) when missing
and the machine allows it, and builds a PgBouncer that tracks prepared statements.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"

# Debian packages the test suite uses as real peers: (binary that proves it's there, package).
TEST_SYSTEM_PACKAGES = [
    ("/usr/sbin/pgbouncer", "pgbouncer"),
    ("/usr/share/postgresql/15/extension/pgtap.control", "postgresql-15-pgtap"),
    # pg_prove runs the pgTAP suite; only a Recommends of postgresql-15-pgtap, so named here.
    ("/usr/bin/pg_prove", "libtap-parser-sourcehandler-pgtap-perl"),
    # Shared rate-limit buckets; the tests start a private server when none answers on :6379.
    ("/usr/bin/redis-server", "redis-server"),
    # A real browser renders /docs offline (tests/api/test_docs_offline.py).
    ("/usr/bin/chromium", "chromium"),
]


def run(*cmd: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (a clear message on an old interpreter)
        raise SystemExit("tasks-api needs Python 3.11 or newer")
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + extras.encode()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extras}]" if extras else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", target, cwd=ROOT)
    STAMP.write_text(fingerprint)


def ensure_system_packages() -> None:
    missing = [pkg for marker, pkg in TEST_SYSTEM_PACKAGES if not Path(marker).exists()]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"note: missing {', '.join(missing)}; tests needing them will say so", flush=True)
        return
    run("apt-get", "update", "-qq")
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        *missing,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def cmd_run(args: list[str]) -> int:
    """Become `tasks-api serve` (exec, not a child): a SIGTERM to this process then reaches the
    service itself, which stops its workers and its embedded PostgreSQL; a child would have
    been left running, holding the port and the data directory."""
    ensure_venv("")
    tasks_api = str(VENV / "bin" / "tasks-api")
    os.chdir(ROOT)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(tasks_api, [tasks_api, "serve", *args])  # noqa: S606 (no shell: a fixed path)


def ensure_tracking_pgbouncer() -> None:
    """PgBouncer 1.21+, built once into .tasks-api/ (scripts/tracking_pgbouncer.py)."""
    from scripts import tracking_pgbouncer

    if tracking_pgbouncer.BINARY.exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print("note: no PgBouncer 1.21+; the tests behind it will say so", flush=True)
        return
    tracking_pgbouncer.build()


def cmd_test(args: list[str]) -> int:
    ensure_venv("test")
    ensure_system_packages()
    ensure_tracking_pgbouncer()
    code = subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)
    if code == 5:
        print("error: pytest collected no tests", file=sys.stderr)
    return code


def main() -> int:
    commands = {"run": cmd_run, "test": cmd_test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
