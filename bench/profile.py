"""Where a worker's time goes: py-spy samples of a live worker, summarised per function.

`python3 bench/profile.py PID SECONDS` (or `run.py --profile OP`) records the worker with py-spy
(sampling, no code change, idle threads excluded) and prints the functions holding the most
samples, inclusive (the function and everything it called) and self (the function's own code).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _label(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


# Leaf frame (where the sample's own code ran) -> component, first match wins.
COMPONENTS = (
    ("database driver, pool and ORM (psycopg, sqlalchemy, sqlmodel, db/)",
     ("psycopg", "sqlalchemy", "sqlmodel", "db/")),
    ("thread-pool hand-off (anyio, threading, queue)", ("anyio/", "threading.py", "queue.py")),
    ("JWT verification (jwt, api/auth/)", ("jwt/", "api/auth/", "cryptography")),
    ("JSON and validation (pydantic)", ("pydantic",)),
    ("logs and metrics (logging, prometheus, api/observability/)",
     ("logging/", "prometheus_client", "api/observability/")),
    ("rate limiter (api/ratelimit*)", ("api/ratelimit",)),
    ("FastAPI and Starlette (routing, params, responses)", ("fastapi/", "starlette/")),
    ("HTTP server and event loop (uvicorn, asyncio)", ("uvicorn/", "asyncio/", "uvloop")),
    ("the service's own middleware and routes (api/)", ("api/",)),
)


def _component(label: str) -> str:
    for name, markers in COMPONENTS:
        if any(marker in label for marker in markers):
            return name
    return "other (stdlib, interpreter)"


# The split bench/run.py prints per request: each component above folds into one of these.
SPLIT = ("http+framework", "jwt", "driver", "json")


def _split_of(component: str) -> str:
    if component.startswith("JWT"):
        return "jwt"
    if component.startswith("database driver"):
        return "driver"
    if component.startswith("JSON"):
        return "json"
    return "http+framework"


def split(raw: Path) -> dict[str, float]:
    """Share of the worker's Python samples per SPLIT entry (empty when nothing was sampled)."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            leaf = _label([f for f in stack.split(";") if f][-1])
            counts[_split_of(_component(leaf))] += int(count_text)
    total = sum(counts.values())
    return {name: counts[name] / total for name in SPLIT} if total else {}


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Path:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
    command += ["-r", str(rate), "-f", "raw", "-o", str(out), "--nonblocking", "--gil"]
    subprocess.run(command, capture_output=True, check=True)
    return out


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_label(f) for f in stack.split(";") if f]
        total += count
        own[frames[-1]] += count
        components[_component(frames[-1])] += count
        for label in set(frames):
            inclusive[label] += count
    if total == 0:
        return "no samples"
    lines = [f"{total} samples while holding the GIL (CPU spent in Python)", "", "by component:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in components.most_common()]
    lines += ["", "inclusive:"]
    lines += [f"  {n / total:6.1%}  {label}" for label, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {n / total:6.1%}  {label}" for label, n in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 2:
        print(summarise(Path(sys.argv[1])))
    else:
        target = Path(sys.argv[3] if len(sys.argv) > 3 else "/tmp/tasks-bench-profile.txt")
        print(summarise(record(int(sys.argv[1]), float(sys.argv[2]), target)))
