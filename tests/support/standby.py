"""A private primary and a streaming hot standby, from the machine's PostgreSQL 15 binaries.

The primary is made with `initdb` (wal_level=replica, trust auth including replication), the
standby with `pg_basebackup -R` from it, so what the tests read through is real streaming
replication: WAL shipped, replayed, pausable with `pg_wal_replay_pause()`. Both listen on free
loopback ports with their unix sockets in the temporary directory. PostgreSQL refuses to run as
root, so as root every server command runs as the `postgres` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.server import free_port

PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_SERVER_USER = "postgres"


def available() -> bool:
    return all((PG_BIN / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup"))


def _as_server_user(command: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(command)
    return ["runuser", "-u", _SERVER_USER, "--", *command]


def _run(*command: str | Path) -> None:
    subprocess.run(
        _as_server_user([str(part) for part in command]),
        check=True,
        capture_output=True,
        text=True,
    )


@dataclass
class Server:
    """One running cluster: its data directory, port and superuser URL."""

    data_dir: Path
    port: int
    socket_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run(
            PG_BIN / "pg_ctl", "start", "-w", "-t", "30", "-D", self.data_dir,
            "-l", self.data_dir.parent / f"{self.data_dir.name}.log",
            "-o", f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        _run(PG_BIN / "pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", self.data_dir)

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@dataclass
class ReplicatedPair:
    primary: Server
    standby: Server

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Return once the standby has replayed everything the primary has written so far
        (positions are the cluster's, so any database will do)."""
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = str(row[0])
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.standby.url, autocommit=True) as conn:
            while True:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay to {target} in {timeout}s")
                time.sleep(0.02)

    def pause_replay(self) -> None:
        with psycopg.connect(self.standby.url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with psycopg.connect(self.standby.url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


_PRIMARY_SETTINGS = """
wal_level = replica
max_wal_senders = 5
hot_standby = on
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = 16MB
max_connections = 60
wal_receiver_status_interval = 1s
hot_standby_feedback = on
log_min_messages = warning
"""


@contextmanager
def replicated_pair() -> Iterator[ReplicatedPair]:
    """Start a primary and a streaming hot standby of it; stop and delete both afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tasks-standby-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_SERVER_USER)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    primary = Server(root / "primary", free_port(), root)
    standby = Server(root / "standby", free_port(), root)
    started: list[Server] = []
    try:
        _run(PG_BIN / "initdb", "-D", primary.data_dir, "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--no-sync")  # fmt: skip
        with (primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_PRIMARY_SETTINGS)
        with (primary.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        started.append(primary)
        _run(PG_BIN / "pg_basebackup", "-D", standby.data_dir, "-h", "127.0.0.1",
             "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream",
             "--checkpoint=fast", "--no-sync")  # fmt: skip
        standby.start()
        started.append(standby)
        pair = ReplicatedPair(primary, standby)
        pair.wait_for_replay()
        yield pair
    finally:
        for server in reversed(started):
            if server.is_running():
                with suppress(subprocess.CalledProcessError):
                    server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
