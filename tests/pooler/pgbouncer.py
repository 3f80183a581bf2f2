"""A real PgBouncer in transaction mode in front of a test database.

Two builds: Debian's package (1.18, no prepared-statement tracking) and, with
`tracks_prepared_statements`, the 1.21+ that `scripts/tracking_pgbouncer.py` builds, run with
`max_prepared_statements` as Neon's pooler is.

It listens on a free 127.0.0.1 port and offers two pools for the same database: `<db>` with a
few server connections (so many clients share them, as on Neon's pooler) and `<db>_single` with
exactly one (so consecutive transactions provably run on the same server connection).
PgBouncer refuses to run as root; then it runs as the owner of the target's socket directory
(the embedded server's) or as `nobody` (TCP targets).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from scripts import tracking_pgbouncer
from tests.support.server import free_port

PGBOUNCER = Path("/usr/sbin/pgbouncer")
SHARED_POOL_SIZE = 4
MAX_PREPARED_STATEMENTS = 200


@dataclass(frozen=True)
class Pooler:
    url: str  # the shared transaction-mode pool
    single_url: str  # the same database through a pool of one server connection
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def on_each_server_connection(self, sql: str) -> list[tuple[Any, ...]]:
        """`sql`'s first row on every shared server connection: one client per server
        connection, each held in a transaction until all have answered, so that each lands
        on a different one."""
        clients = [
            psycopg.connect(self.url, prepare_threshold=None) for _ in range(SHARED_POOL_SIZE)
        ]
        try:
            rows = [c.execute(sql).fetchone() for c in clients]
        finally:
            for conn in clients:
                conn.rollback()
                conn.close()
        return [row for row in rows if row is not None]


def _backend(database_url: str) -> tuple[str, int, str, str]:
    url = make_url(database_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    return str(host), int(url.port or 5432), str(url.database), str(url.username or "postgres")


def _run_as(host: str) -> str | None:
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


def _config(workdir: Path, database_url: str, port: int, tracks_prepared: bool) -> str:
    host, backend_port, database, user = _backend(database_url)
    target = f"host={host} port={backend_port} dbname={database} user={user}"
    return f"""\
[databases]
{database} = {target} pool_size={SHARED_POOL_SIZE}
{database}_single = {target} pool_size=1

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = transaction
# A client waiting this long for a server connection fails fast instead of after 120 s.
query_wait_timeout = 10
max_client_conn = 500
default_pool_size = {SHARED_POOL_SIZE}
ignore_startup_parameters = extra_float_digits
server_reset_query =
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
""" + (f"max_prepared_statements = {MAX_PREPARED_STATEMENTS}\n" if tracks_prepared else "")


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"pgbouncer exited {process.returncode}:\n"
                + (log.parent / "stderr.txt").read_text()
                + log.read_text()
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port}:\n{log.read_text()}")


@contextmanager
def pgbouncer(database_url: str, *, tracks_prepared_statements: bool = False) -> Iterator[Pooler]:
    binary = tracking_pgbouncer.BINARY if tracks_prepared_statements else PGBOUNCER
    if not binary.exists():
        raise RuntimeError(
            f"{binary} is missing: dev.py test installs pgbouncer and builds PgBouncer 1.21+"
        )
    host, _, database, user = _backend(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="tasks-pgbouncer-"))
    port = free_port()
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(_config(workdir, database_url, port, tracks_prepared_statements))
    log = workdir / "pgbouncer.log"
    log.touch()
    command = [str(binary), "-q"]
    run_as = _run_as(host)
    if run_as is not None:
        shutil.chown(workdir, run_as)
        for path in workdir.iterdir():
            shutil.chown(path, run_as)
        command += ["-u", run_as]
    with (workdir / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen([*command, str(config)], stderr=stderr)
    try:
        _wait_listening(port, process, log)
        base = make_url(database_url).set(host="127.0.0.1", port=port, query={})
        yield Pooler(
            url=base.render_as_string(hide_password=False),
            single_url=base.set(database=f"{database}_single").render_as_string(
                hide_password=False
            ),
            log_path=log,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
