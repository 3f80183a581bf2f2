"""The HTTP side: wrk driving the running service with per-request tokens for random users.

wrk (C, epoll, keep-alive) is a proven closed-loop generator; bench/wrk/tasks.lua picks a random
seeded user for every request and sends that user's own pre-minted token, so every request goes
through the full path: JWT verification, the tenant check, one RLS transaction, JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from api.auth.tokens import mint_token

LUA = Path(__file__).resolve().parent / "wrk" / "tasks.lua"
MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def require_wrk() -> str:
    """wrk from Debian; installed here when missing and the machine allows it."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench: wrk is required (Debian: apt-get install wrk)")


def write_tokens(path: Path, secret: str, users: int, ttl_seconds: int) -> None:
    """One `user token` line per seeded user, signed like any HS256 client token."""
    lines = (
        f"{user} {mint_token(secret, str(user), ttl_seconds=ttl_seconds)}"
        for user in range(1, users + 1)
    )
    path.write_text("\n".join(lines) + "\n")


def run_wrk(
    base_url: str,
    op: str,
    tokens: Path,
    *,
    connections: int,
    seconds: float,
    tasks_per_user: int,
    threads: int = 2,
) -> Load:
    command = [
        require_wrk(),
        "-t",
        str(max(1, min(threads, connections))),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        base_url,
        "--",
        str(tokens),
        op,
        str(tasks_per_user),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk {op} failed:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[len(MARKER) :])
    seconds_run = raw["duration_us"] / 1e6
    return Load(
        requests=raw["requests"],
        seconds=seconds_run,
        rps=raw["requests"] / seconds_run,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        # wrk counts a status >= 400 as a "status" error; 3xx never happens here.
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    )
