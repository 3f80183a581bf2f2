"""Build a PgBouncer that tracks protocol-level prepared statements (1.21+), for the tests.

Debian 12's PgBouncer is 1.18, which cannot keep prepared statements in transaction mode; the
pooler suite runs the service's default against it. To prove `DB_PREPARED_STATEMENTS=true`
behind a pooler that can (Neon's pooler and PgBouncer 1.21+ with `max_prepared_statements`),
the suite also needs a newer one. The next Debian release packages it, but its binary needs a
newer C library, so this builds that package's signed source against this machine's libraries
(about 15 s) into `.tasks-api/pgbouncer/`. The source comes from the same Debian mirror and
keyring the machine's own apt configuration names; nothing here names a host.

Standard library only: `dev.py test` calls it before the virtual environment exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = ROOT / ".tasks-api" / "pgbouncer"
BINARY = PREFIX / "bin" / "pgbouncer"
SOURCE_SUITE = "trixie"  # Debian 13, whose PgBouncer is 1.24
BUILD_PACKAGES = ("libevent-dev", "pkg-config", "gcc", "make", "libc6-dev")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=cwd, env=env)


def _archive() -> tuple[str, str]:
    """The main Debian archive this machine's apt uses, and the keyring that signs it."""
    for stanza in DEBIAN_SOURCES.read_text().split("\n\n"):
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in stanza.splitlines())
            if not key.startswith("#") and value
        )
        if "security" not in fields.get("Suites", "") and "URIs" in fields:
            return fields["URIs"].split()[0], fields.get("Signed-By", "")
    raise RuntimeError(f"no main Debian archive in {DEBIAN_SOURCES}")


def build() -> Path:
    """The path of a PgBouncer 1.21+ binary, building it first when it is not there yet."""
    if BINARY.exists():
        return BINARY
    uri, keyring = _archive()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run("apt-get", "install", "-y", "-qq", *BUILD_PACKAGES, env=env)
    with tempfile.TemporaryDirectory(prefix="tasks-pgbouncer-build-") as tmp:
        work = Path(tmp)
        (work / "sources").mkdir()
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "sources" / "source.sources").write_text(
            f"Types: deb-src\nURIs: {uri}\nSuites: {SOURCE_SUITE}\nComponents: main\n"
            + (f"Signed-By: {keyring}\n" if keyring else "")
        )
        apt = [
            "-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={work / 'sources'}",
            "-o", f"Dir::State::Lists={work / 'lists'}",
        ]  # fmt: skip
        _run("apt-get", *apt, "update", "-qq")
        _run("apt-get", *apt, "source", "--download-only", "pgbouncer", cwd=work)
        (tarball,) = work.glob("pgbouncer_*.orig.tar.gz")
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        (tree,) = (p for p in work.glob("pgbouncer-*") if p.is_dir())
        _run(
            "./configure", f"--prefix={PREFIX}", "--without-openssl", "--without-cares",
            cwd=tree,
        )  # fmt: skip
        _run("make", f"-j{os.cpu_count() or 1}", "install", cwd=tree)
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True)
    found = re.search(r"PgBouncer (\d+)\.(\d+)", version.stdout)
    if found is None or (int(found[1]), int(found[2])) < (1, 21):
        shutil.rmtree(PREFIX, ignore_errors=True)
        raise RuntimeError(f"built PgBouncer is too old to track prepared statements: {version}")
    return BINARY


if __name__ == "__main__":
    print(build())
    sys.exit(0)
