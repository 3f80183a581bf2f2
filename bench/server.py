"""The service under test: `tasks-api serve` as an operator runs it, plus its memory per worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def backend_cpu_seconds(url: str) -> dict[int, float]:
    """CPU time so far of each PostgreSQL backend serving `url`'s database (this one excluded):
    the database's side of the requests, when it runs on this machine."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return {pid: _cpu_seconds(pid) for (pid,) in conn.execute(_BACKENDS).fetchall()}


@contextmanager
def backend_cpu(url: str, interval: float = 0.25) -> Iterator[list[float]]:
    """CPU seconds the database's backends spent while the block ran (yields a one-item list,
    filled at the end). Sampled every `interval` over one connection, so a backend that is
    opened and closed during the block (a pool's overflow connection) still counts, up to its
    last sample."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:

        def now() -> dict[int, float]:
            return {pid: _cpu_seconds(pid) for (pid,) in conn.execute(_BACKENDS).fetchall()}

        first = now()
        last = dict(first)
        result: list[float] = []
        with _sampling(lambda: last.update(now()), interval):
            yield result
        last.update(now())
        result.append(sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items()))


@contextmanager
def _sampling(sample: Callable[[], None], interval: float) -> Iterator[None]:
    """Call `sample` every `interval` seconds in a thread while the block runs, once more at
    its start; the thread is joined before the block's caller reads what it gathered."""
    stop = threading.Event()

    def loop() -> None:
        sample()
        while not stop.wait(interval):
            sample()

    sampler = threading.Thread(target=loop, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Service:
    """A running `tasks-api serve`; `worker_pids` are the processes that serve requests."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workers: int) -> None:
        self.process = process
        self.port = port
        self.workers = workers

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.process.pid]
        return [
            pid
            for pid in _children(self.process.pid)
            if "resource_tracker" not in _cmdline(pid)
        ]

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes, workers included."""
        pids = {self.process.pid, *self.worker_pids()}
        return sum(_cpu_seconds(pid) for pid in pids)

    def rss_mb(self) -> list[float]:
        return [mb for pid in self.worker_pids() if (mb := _rss_mb(pid)) is not None]

    @contextmanager
    def peak_rss(self, interval: float = 0.25) -> Iterator[list[float]]:
        """Sample every worker's RSS while the block runs; yields the per-worker peaks (MB)."""
        peaks: dict[int, float] = {}

        def sample() -> None:
            for pid in self.worker_pids():
                mb = _rss_mb(pid)
                if mb is not None:
                    peaks[pid] = max(peaks.get(pid, 0.0), mb)

        result: list[float] = []
        with _sampling(sample, interval):
            yield result
        result.extend(sorted(peaks.values()))


def _wait_ready(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"tasks-api serve exited with {service.process.returncode}")
        try:
            with urllib.request.urlopen(f"{service.base_url}/healthz", timeout=1) as response:
                if response.status == 200 and len(service.worker_pids()) >= service.workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("tasks-api serve did not become ready in time")


@contextmanager
def serve(
    workers: int,
    env: Mapping[str, str],
    log_path: Path,
    source: Path | None = None,
    ready_timeout: float = 60.0,
    app: str | None = None,
) -> Iterator[Service]:
    """Start `tasks-api serve --workers N` on a free port; stop it (and only it) afterwards.

    `source` serves another checkout of the code (e.g. a `git worktree` of an older commit)
    with this virtualenv, so two versions can be compared under the same conditions. `app`
    ("module:factory") serves another application with the server and flags `serve` uses
    (bench/framework_floor.py).
    """
    port = free_port()
    command = [sys.executable, "-m", "cli.main", "serve", "--workers", str(workers)]
    command += ["--port", str(port)]
    extra = {"PYTHONPATH": str(source)} if source else {}
    if app is not None:
        command = [sys.executable, "-m", "uvicorn", app, "--factory", "--workers", str(workers)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        command += ["--no-server-header", "--no-proxy-headers", "--log-level", "warning"]
        metrics = tempfile.mkdtemp(prefix="tasks-bench-metrics-")
        extra |= {"PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": metrics}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=source,
            env={**os.environ, **env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(process, port, workers)
    try:
        _wait_ready(service, ready_timeout)
        yield service
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
