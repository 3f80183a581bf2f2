"""Instructions per request: the server's CPU cost counted by valgrind, not timed.

On shared, noisy cores the same build's CPU time per request moves by 15% from one run to the next,
so two builds a few percent apart cannot be told apart by timing. valgrind's callgrind counts the
instructions the process executes, which do not depend on what else the machine is doing. `python3
bench/instructions.py --a-source /tmp/old --ops list,get` runs each build's app in-process (its own
`create_app`, the ASGI app called directly: every middleware, the JWT check, FastAPI, any thread
hand-off the build makes, the driver and the access log, no HTTP server and no socket to the
client), warms it up uninstrumented, then counts `--requests` requests with `--concurrency` in
flight against a freshly seeded database, and prints instructions per request and B/A. `--ops
framework` counts bench/framework_floor.py's constant page through the same stack. PostgreSQL's own
work is not in the count (another process); `bench/run.py` measures it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The parent imports the harness from this checkout; the driver (`--child`), started in the
# checkout it measures, imports that checkout's app and nothing of this one.
sys.path.insert(0, str(Path.cwd()) if "--child" in sys.argv else str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import MutableMapping  # noqa: E402
from typing import Any  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)


def _path(op: str, user: int, tasks_per_user: int, rng: random.Random) -> str:
    if op == "list":
        return f"/api/{user}/tasks"
    if op == "framework":  # bench/framework_floor.py: the same stack, a constant page
        return f"/api/{user}/constant"
    if op == "get":
        prefix = os.environ["BENCH_TASK_ID_PREFIX"]
        task = f"{prefix}{user * 1000 + rng.randint(1, tasks_per_user):012d}"
        return f"/api/{user}/tasks/{task}"
    raise ValueError(f"unknown operation {op!r} (list, get or framework)")


async def _drive(op: str, requests: int, concurrency: int, warmup: int) -> None:
    """The child: serve `requests` requests through the app of the checkout on sys.path."""
    if op == "framework":
        from bench.framework_floor import create_app
    else:
        from api.app import create_app

    users = int(os.environ["BENCH_USERS"])
    tasks_per_user = int(os.environ["BENCH_TASKS_PER_USER"])
    lines = Path(os.environ["BENCH_TOKENS"]).read_text().split()
    tokens = {int(user): token for user, token in zip(lines[::2], lines[1::2], strict=True)}
    app = create_app()
    rng = random.Random(15)  # the same users and tasks for every build

    async def one() -> None:
        user = rng.randint(1, users)
        path = _path(op, user, tasks_per_user, rng)
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"authorization", f"Bearer {tokens[user]}".encode()),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise SystemExit(f"{path} answered {status}")

    async def run(count: int) -> None:
        async def worker(share: int) -> None:
            for _ in range(share):
                await one()

        shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
        await asyncio.gather(*(worker(share) for share in shares))

    async with app.router.lifespan_context(app):
        await run(warmup)
        print("READY", flush=True)
        sys.stdin.readline()  # the parent switches counting on
        await run(requests)
        print("DONE", flush=True)
        sys.stdin.readline()  # ... and off


def _count(source: Path, op: str, args: argparse.Namespace, env: dict[str, str]) -> int:
    """Instructions of `requests` requests through `source`'s app, under callgrind."""
    with tempfile.TemporaryDirectory(prefix="tasks-bench-ir-") as tmp:
        out = Path(tmp) / "callgrind.out"
        child = subprocess.Popen(
            [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}", sys.executable, str(Path(__file__).resolve()),
                "--child", op, "--requests", str(args.requests),
                "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
            ],
            cwd=source,
            env={**env, "PYTHONPATH": str(source)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        for expected, switch in (("READY", "--instr=on"), ("DONE", "--instr=off")):
            line = child.stdout.readline().strip()
            if line != expected:
                child.kill()
                raise SystemExit(f"{source}: expected {expected}, got {line!r}")
            subprocess.run(
                ["callgrind_control", switch, str(child.pid)],
                check=True, capture_output=True,
            )
            child.stdin.write("\n")
            child.stdin.flush()
        if child.wait(timeout=600) != 0:
            raise SystemExit(f"{source}: the driver failed")
        counted = _TOTALS.search(out.read_text())
        if counted is None:
            raise SystemExit(f"{source}: no instruction total in {out}")
        return int(counted[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--a-source", type=Path, default=ROOT)
    parser.add_argument("--b-source", type=Path, default=ROOT)
    parser.add_argument("--ops", default="list,get")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--tasks-per-user", type=int, default=100)
    parser.add_argument("--child", metavar="OP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import uvloop  # what `tasks-api serve` runs on

        uvloop.run(_drive(args.child, args.requests, args.concurrency, args.warmup))
        return 0
    from bench.load import write_tokens
    from bench.seed import TASK_ID_PREFIX, Dataset, bench_database

    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    secret = secrets.token_urlsafe(48)
    with (
        bench_database(args.admin_url, Dataset(args.users, args.tasks_per_user)) as url,
        tempfile.TemporaryDirectory(prefix="tasks-bench-ir-") as tmp,
    ):
        tokens = Path(tmp) / "tokens"
        write_tokens(tokens, secret, args.users, ttl_seconds=3600)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "JWT_SECRET": secret,
            "BENCH_TOKENS": str(tokens),
            "RATE_LIMIT": "off",
            "BENCH_USERS": str(args.users),
            "BENCH_TASKS_PER_USER": str(args.tasks_per_user),
            "BENCH_TASK_ID_PREFIX": TASK_ID_PREFIX,
        }
        print(f"instructions per request ({args.requests} requests, {args.concurrency} in flight,"
              " callgrind; the server process only)")
        for op in args.ops.split(","):
            a = _count(args.a_source, op, args, env) / args.requests
            b = _count(args.b_source, op, args, env) / args.requests
            print(f"  {op:6s} A {a:12,.0f}   B {b:12,.0f}   B/A {b / a:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
