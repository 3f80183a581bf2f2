"""Read replicas: which ones may serve a read now, and how far behind each one is.

A `ReplicaSet` owns one engine per replica URL (`DATABASE_READ_URL`) and a per-process monitor
that keeps, for each replica, whether it is in rotation. The unit of work asks it where a read
may run (`choose`); it never sends a query itself.

How lag is known without a round trip per read: the monitor samples the primary's
`pg_current_wal_lsn()` every `poll_interval` and keeps a short history of (time, LSN), then reads
each replica's `pg_last_wal_replay_lsn()`. A replica that has replayed at least the newest
primary sample is caught up (lag 0, which is also what an idle primary looks like: comparing
replay timestamps would call an idle primary's replica minutes behind). Otherwise its lag is the
age of the newest primary sample it has fully replayed: an upper bound, off by at most one poll.
A replica whose lag exceeds the bound, that cannot be reached, or that is not in recovery at all
(promoted, or a wrong URL) leaves rotation; the next good sample puts it back. A verdict also
expires (`verdict_lifetime`): a monitor stuck on a silent network stops vouching for anyone.

LSNs are `int`s here (PostgreSQL's `pg_lsn`, 64 bits); `parse_lsn`/`format_lsn` convert the
`X/Y` text form.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from db.engine import PoolConfig, build_engine, retire_pooled_connections, sqlalchemy_url

log = logging.getLogger(__name__)

LSN_MAX = 2**64 - 1
_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
_REPLICA_POSITION = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"


def parse_lsn(text: str) -> int:
    """`16/B374D848` -> 0x16B374D848; ValueError on anything else."""
    high, sep, low = text.partition("/")
    if not sep or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def public_host(url: str) -> str:
    """host:port of a URL, for logs and metric labels: never the user, password or options."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


@dataclass(frozen=True)
class ReplicaState:
    """What the monitor last learned about one replica (replaced whole, never mutated)."""

    in_rotation: bool
    replay_lsn: int | None
    lag_seconds: float | None
    reason: str
    checked_at: float = field(default_factory=time.monotonic)


_NOT_YET_CHECKED = ReplicaState(False, None, None, "not checked yet", 0.0)
# Socket-level limits for the monitor's connections: a replica that vanishes without closing
# the connection must not wedge the monitor for the kernel's retransmission timeout.
_MONITOR_SOCKET = {
    "tcp_user_timeout": 2000,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
}


class Replica:
    """One replica URL: its engine and the monitor's latest verdict on it."""

    def __init__(self, index: int, url: str, engine: Engine) -> None:
        self.index = index
        self.label = f"replica{index}"
        self.host = public_host(url)
        self.url = url
        self.engine = engine
        self.state = _NOT_YET_CHECKED

    def __repr__(self) -> str:
        return f"Replica({self.label} at {self.host})"


@dataclass(frozen=True)
class Choice:
    """Where a read goes: a replica, or the primary (`replica is None`) and why."""

    replica: Replica | None
    # Why the primary: "token" (no replica in rotation has replayed the client's last write),
    # "lag" (no replica in rotation: all too far behind or unreachable). None for a replica.
    fallback: str | None = None


StateListener = Callable[[Replica], None]


class ReplicaSet:
    """The replicas of one primary, and the monitor that keeps their rotation current."""

    def __init__(
        self,
        primary_url: str,
        replica_urls: Sequence[str],
        *,
        max_lag_seconds: float = 1.0,
        poll_interval_seconds: float = 0.1,
        pool: PoolConfig | None = None,
        connect_timeout_seconds: int = 2,
    ) -> None:
        # A replica that refuses connections must cost a read nothing: no connect retries
        # (the read goes to the primary at once) and the monitor takes it out of rotation.
        config = pool or PoolConfig()
        replica_pool = PoolConfig(
            size=config.size,
            max_overflow=config.max_overflow,
            timeout_seconds=config.timeout_seconds,
            connect_timeout_seconds=config.connect_timeout_seconds,
            connect_retry_budget_seconds=0.0,
            pre_ping=config.pre_ping,
            prepared_statements=config.prepared_statements,
        )
        self.replicas = tuple(
            Replica(index, url, build_engine(url, replica_pool))
            for index, url in enumerate(replica_urls)
        )
        self.max_lag_seconds = max_lag_seconds
        self.poll_interval_seconds = poll_interval_seconds
        self.verdict_lifetime_seconds = max_lag_seconds + max(1.0, 20 * poll_interval_seconds)
        self._primary_url = primary_url
        self._connect_timeout = connect_timeout_seconds
        # Enough samples to date a lag of twice the bound; older than that is "too far behind".
        depth = max(10, int(2 * max_lag_seconds / max(poll_interval_seconds, 0.001)) + 2)
        self._history: collections.deque[tuple[float, int]] = collections.deque(maxlen=depth)
        self._connections: dict[str, psycopg.Connection[tuple[object, ...]]] = {}
        self._turn = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poll_lock = threading.Lock()
        self.listeners: list[StateListener] = []

    def choose(self, at_least: int | None = None) -> Choice:
        """A replica in rotation (that has replayed `at_least`, when given), or the primary."""
        oldest = time.monotonic() - self.verdict_lifetime_seconds
        eligible = [
            r for r in self.replicas if r.state.in_rotation and r.state.checked_at >= oldest
        ]
        if not eligible:
            return Choice(None, "lag")
        if at_least is not None:
            eligible = [r for r in eligible if (r.state.replay_lsn or 0) >= at_least]
            if not eligible:
                return Choice(None, "token")
        return Choice(eligible[next(self._turn) % len(eligible)])

    def leave_rotation(self, replica: Replica, reason: str) -> None:
        """A read found the replica broken: out until the monitor sees it healthy again."""
        retire_pooled_connections(replica.engine)
        self._set(replica, ReplicaState(False, replica.state.replay_lsn, None, reason))

    def poll_once(self) -> None:
        """Sample the primary's position, then judge every replica against it."""
        with self._poll_lock:
            now = time.monotonic()
            primary = self._position(self._primary_url, _PRIMARY_POSITION)
            if primary is not None and primary[0] is not None:
                self._history.append((now, parse_lsn(str(primary[0]))))
            for replica in self.replicas:
                self._set(replica, self._judge(replica))

    def start(self) -> None:
        """Judge every replica once (a replica down now simply starts out of rotation), then
        keep judging them in a background thread until `stop`."""
        if not self.replicas or self._thread is not None:
            return
        self.poll_once()
        self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._poll_lock:
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()

    def dispose(self) -> None:
        self.stop()
        for replica in self.replicas:
            replica.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval_seconds):
            try:
                self.poll_once()
            except Exception:  # the monitor must outlive any surprise; reads fall back anyway
                log.exception("replica monitor poll failed")

    def _judge(self, replica: Replica) -> ReplicaState:
        row = self._position(replica.url, _REPLICA_POSITION)
        if row is None:
            return ReplicaState(False, replica.state.replay_lsn, None, "unreachable")
        in_recovery, replayed = row
        if not in_recovery or replayed is None:
            return ReplicaState(False, None, None, "not a standby (pg_is_in_recovery() is false)")
        replay_lsn = parse_lsn(str(replayed))
        lag = self._lag_seconds(replay_lsn)
        if lag is None:
            return ReplicaState(False, replay_lsn, None, "primary position unknown")
        if lag > self.max_lag_seconds:
            return ReplicaState(False, replay_lsn, lag, f"{lag * 1000:.0f} ms behind")
        return ReplicaState(True, replay_lsn, lag, "in rotation")

    def _lag_seconds(self, replay_lsn: int) -> float | None:
        if not self._history:
            return None
        newest_lsn = self._history[-1][1]
        if replay_lsn >= newest_lsn:
            return 0.0
        replayed_times = [t for t, lsn in self._history if lsn <= replay_lsn]
        since = replayed_times[-1] if replayed_times else self._history[0][0]
        return max(0.0, time.monotonic() - since)

    def _position(self, url: str, sql: str) -> tuple[object, ...] | None:
        """One monitoring query on a kept autocommit connection (no transaction, no identity:
        it reads no table); None when the server cannot be reached or answer."""
        conn = self._connections.get(url)
        try:
            if conn is None or conn.closed or conn.broken:
                conn = psycopg.connect(
                    make_conninfo(_libpq(url), **_MONITOR_SOCKET),
                    autocommit=True,
                    connect_timeout=self._connect_timeout,
                    prepare_threshold=None,
                    application_name="tasks-api-replica-monitor",
                )
                self._connections[url] = conn
            return conn.execute(sql).fetchone()
        except psycopg.Error as exc:
            log.debug("replica monitor: %s did not answer: %s", public_host(url), exc)
            stale = self._connections.pop(url, None)
            if stale is not None:
                stale.close()
            return None

    def _set(self, replica: Replica, state: ReplicaState) -> None:
        before = replica.state
        replica.state = state
        if before.in_rotation != state.in_rotation:
            if state.in_rotation:
                log.info("replica %s (%s) back in rotation", replica.label, replica.host)
            else:
                log.warning(
                    "replica %s (%s) out of rotation: %s", replica.label, replica.host, state.reason
                )
        for listener in self.listeners:
            listener(replica)


def _libpq(url: str) -> str:
    return (
        make_url(sqlalchemy_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
