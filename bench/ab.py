#!/usr/bin/env python3
"""Interleaved A/B: two builds (or two settings) of the service on one database, wrk alternating.

`python3 bench/ab.py --a-source /tmp/old --ops list,get --rounds 3` serves the old checkout
(A) and this one (B) side by side, both with `--workers N`, and runs wrk on A, then B, then A...
so that whatever else the machine does falls on both arms alike. `--a-env`/`--b-env NAME=VALUE`
vary a setting instead of the code. Prints req/s, p50/p99 and CPU per request (all the servers'
processes, then "+" PostgreSQL's backends: each arm has its own database) per arm, and the B/A
ratios; CPU per request moves far less than req/s on a shared machine, so judge by it first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from typing import Any  # noqa: E402

from bench.load import run_wrk, write_tokens  # noqa: E402
from bench.seed import Dataset, bench_database  # noqa: E402
from bench.server import _cpu_seconds as _cpu  # noqa: E402
from bench.server import backend_cpu, serve  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--a-source", type=Path, default=None, help="checkout served as A")
    parser.add_argument("--b-source", type=Path, default=None, help="checkout served as B")
    parser.add_argument("--a-env", action="append", default=[], help="NAME=VALUE for A")
    parser.add_argument("--b-env", action="append", default=[], help="NAME=VALUE for B")
    parser.add_argument("--ops", default="list,get")
    parser.add_argument("--connections", default="8")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--tasks-per-user", type=int, default=100)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dataset = Dataset(args.users, args.tasks_per_user)
    secret = secrets.token_urlsafe(48)
    work = Path(tempfile.mkdtemp(prefix="tasks-bench-ab-"))
    tokens = work / "tokens.txt"
    write_tokens(tokens, secret, dataset.users, ttl_seconds=6 * 3600)
    ops = [op for op in args.ops.split(",") if op]
    connections = [int(c) for c in args.connections.split(",") if c]
    results: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    with ExitStack() as stack:
        # One database per arm, so each arm's PostgreSQL CPU can be told apart.
        urls = {name: stack.enter_context(bench_database(args.admin_url, dataset)) for name in "AB"}
        base = {"JWT_SECRET": secret, "RATE_LIMIT": "off"}
        arms = {
            name: stack.enter_context(
                serve(
                    args.workers,
                    base | {"DATABASE_URL": urls[name]} | _env(extra),
                    work / f"{name}.log",
                    source,
                )
            )
            for name, extra, source in (
                ("A", args.a_env, args.a_source),
                ("B", args.b_env, args.b_source),
            )
        }
        for service in arms.values():
            run_wrk(service.base_url, "list", tokens, connections=64, seconds=2,
                    tasks_per_user=dataset.tasks_per_user)
        for _ in range(args.rounds):
            for op in ops:
                for conns in connections:
                    for name, service in arms.items():
                        before = service.cpu_seconds()
                        per_worker = {pid: _cpu(pid) for pid in service.worker_pids()}
                        with backend_cpu(urls[name]) as pg_seconds:
                            load = run_wrk(service.base_url, op, tokens, connections=conns,
                                           seconds=args.duration,
                                           tasks_per_user=dataset.tasks_per_user)
                        cpu_us = (service.cpu_seconds() - before) * 1e6 / max(1, load.requests)
                        pg_us = pg_seconds[0] * 1e6 / max(1, load.requests)
                        spent = [_cpu(pid) - cpu for pid, cpu in per_worker.items()]
                        shares = "/".join(f"{100 * s / max(sum(spent), 1e-9):.0f}" for s in spent)
                        run = {"rps": load.rps, "p50": load.p50_ms, "p99": load.p99_ms,
                               "cpu_us": cpu_us, "pg_us": pg_us, "errors": load.errors}
                        results.setdefault((op, name, conns), []).append(run)
                        print(f"  {name} {op:<6} c={conns:<3} {load.rps:7.0f} req/s"
                              f"  p50 {load.p50_ms:6.1f}  p99 {load.p99_ms:6.1f} ms"
                              f"  cpu {cpu_us:5.0f} us/req  pg {pg_us:4.0f} us/req"
                              f"  errors {load.errors}"
                              f"  workers {shares}%  load {os.getloadavg()[0]:.1f}", flush=True)
    print("\nmedians over rounds:")
    for op in ops:
        for conns in connections:
            med = {
                name: {k: statistics.median(r[k] for r in results[(op, name, conns)])
                       for k in ("rps", "p50", "p99", "cpu_us", "pg_us")}
                for name in ("A", "B")
            }
            a, b = med["A"], med["B"]
            print(f"  {op:<6} c={conns:<3} A {a['rps']:7.0f} req/s {a['cpu_us']:5.0f}+"
                  f"{a['pg_us']:4.0f} us/req p50 {a['p50']:5.1f} p99 {a['p99']:6.1f}"
                  f" | B {b['rps']:7.0f} req/s {b['cpu_us']:5.0f}+{b['pg_us']:4.0f} us/req"
                  f" p50 {b['p50']:5.1f} p99 {b['p99']:6.1f}"
                  f" | B/A req/s {b['rps'] / a['rps']:.2f}"
                  f" server cpu {b['cpu_us'] / a['cpu_us']:.2f}"
                  f" total cpu {(b['cpu_us'] + b['pg_us']) / (a['cpu_us'] + a['pg_us']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
