"""A real `tasks-api serve` process on a free loopback port, for tests that need the whole stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

TASKS_API = Path(sys.executable).parent / "tasks-api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    # Where /metrics answers, when started with `metrics=True` (never on base_url).
    metrics_url: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def base_env(**overrides: str) -> dict[str, str]:
    """The parent environment minus anything that would point the server elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_URL", "MIGRATION_"))
    }
    env.pop("BETTER_AUTH_SECRET", None)
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


@contextmanager
def serve(
    env: Mapping[str, str],
    log_path: Path,
    *args: str,
    ready_path: str = "/readyz",
    timeout: float = 60.0,
    metrics: bool = False,
) -> Iterator[RunningServer]:
    port = free_port()
    env = dict(env)
    metrics_url = None
    if metrics:
        env["METRICS_PORT"] = str(free_port())
        metrics_url = f"http://127.0.0.1:{env['METRICS_PORT']}/metrics"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(TASKS_API), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path, metrics_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"tasks-api serve exited {process.returncode}:\n{server.log()}")
            try:
                if httpx2.get(server.base_url + ready_path, timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tasks-api serve not ready in {timeout}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
