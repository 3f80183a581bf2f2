"""Pinned npm projects installed once, outside the checkout, keyed by their lockfile.

`npm ci` runs in a staging directory under the cache and the result is renamed into place, under
an exclusive lock, so parallel test processes install once and the working tree never gets a
`node_modules`. A changed package.json or package-lock.json gets a fresh install.
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

CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tasks-api"
MANIFESTS = ("package.json", "package-lock.json")
_MARKER = ".installed"


class NpmInstallError(RuntimeError):
    """`npm ci` failed or timed out; the message carries its output."""


def lock_hash(project: Path) -> str:
    digest = hashlib.sha256()
    for name in MANIFESTS:
        digest.update(name.encode() + (project / name).read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def npm_ci_cached(project: Path, cache_dir: Path, npm: str, *, timeout: float = 600.0) -> Path:
    """The directory holding `node_modules` for `project`'s lockfile (installed on first use)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = lock_hash(project)
    target = cache_dir / key
    with _locked(cache_dir / f".{key}.lock"):
        if (target / _MARKER).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{key}-"))
        try:
            for name in MANIFESTS:
                shutil.copy2(project / name, staging / name)
            try:
                proc = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                    cwd=staging,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise NpmInstallError(f"`npm ci` timed out after {timeout:.0f}s") from exc
            if proc.returncode != 0:
                raise NpmInstallError(
                    f"`npm ci` failed in {staging} (exit {proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}"
                )
            (staging / _MARKER).write_text(key + "\n")
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
