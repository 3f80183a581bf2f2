#!/usr/bin/env python3
"""One command for the whole benchmark: `python3 bench/run.py` (`--smoke` for a seconds-long run).

In one run on this machine: a fresh database (`tasks_bench_<random>`, dropped at the end) is
migrated and seeded; pgbench measures the floor for each endpoint's own transaction; then
`tasks-api serve` runs with each worker count and wrk drives it at each connection count. The
table, the targets, a JSON file and a PNG chart come out (bench/results/ unless --output).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if __name__ == "__main__":
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        # `python3 bench/run.py` from a bare shell: continue inside the project's virtualenv.
        in_venv = Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve()
        if VENV_PYTHON.exists() and not in_venv:
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        raise SystemExit("bench: run `python3 dev.py test` once to create .venv") from None
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import platform  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import asdict  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

from bench import profile, report  # noqa: E402
from bench.floor import find_pgbench, measure_floor  # noqa: E402
from bench.load import require_wrk, run_wrk, write_tokens  # noqa: E402
from bench.seed import Dataset, bench_database  # noqa: E402
from bench.server import backend_cpu, serve  # noqa: E402

OPS = ("list", "get", "create", "update")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LIMITER_ON = "100000/s"  # exercised on every request, never rejects one
FRAMEWORK_FLOOR = "bench.framework_floor:create_app"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _words(text: str) -> list[str]:
    words = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(words) - set(OPS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown operation(s): {', '.join(sorted(unknown))}")
    return words


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 s runs (CI)")
    parser.add_argument("--label", default=None, help="name of the result files (default: run)")
    parser.add_argument("--output", type=Path, default=None, help="results directory")
    parser.add_argument("--compare", type=Path, default=None, help="earlier JSON to overlay")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL"))
    parser.add_argument("--embedded", action="store_true", help="use a private embedded server")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--tasks-per-user", type=int, default=100)
    parser.add_argument("--ops", type=_words, default=list(OPS))
    parser.add_argument("--workers", type=_ints, default=[1, 2])
    parser.add_argument("--connections", type=_ints, default=[8, 64, 256])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--floor-duration", type=float, default=5.0, help="seconds per pgbench")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--no-limiter-row", action="store_true", help="skip the limiter-on row")
    parser.add_argument(
        "--no-framework-floor", action="store_true",
        help="skip the framework floor (a constant list through the same stack)",
    )
    parser.add_argument(
        "--no-split", action="store_true",
        help="skip the per-component CPU split (py-spy at the fewest connections, most workers)",
    )
    parser.add_argument(
        "--profile",
        choices=OPS,
        default=None,
        help="py-spy one worker during this operation (most workers, fewest connections)",
    )
    parser.add_argument(
        "--source", type=Path, default=None, help="serve this checkout instead (git worktree)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.users, args.tasks_per_user = 50, 20
        args.workers, args.connections = [1], [8]
        args.duration = args.floor_duration = args.warmup = 1.0
    args.label = args.label or ("smoke" if args.smoke else "run")
    if args.output is None:
        args.output = (
            Path(tempfile.mkdtemp(prefix="tasks-bench-")) if args.smoke else ROOT / "bench/results"
        )
    return args


@contextmanager
def admin_url(args: argparse.Namespace) -> Iterator[str]:
    if not args.embedded:
        yield args.admin_url or DEFAULT_ADMIN_URL
        return
    from tests.support.postgres import embedded_cluster

    with embedded_cluster() as url:
        yield url


def _machine(url: str, source: Path | None) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    commit = subprocess.run(
        ["git", "-C", str(source or ROOT), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    wrk_version = subprocess.run(
        [require_wrk(), "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    return {
        "commit": commit,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": row[0] if row else None,
        "pgbench": find_pgbench(),
        "wrk": wrk_version[0] if wrk_version else None,
    }


@contextmanager
def _profiled(
    service: Any, args: argparse.Namespace, op: str, summary: bool, shares: dict[str, float]
) -> Iterator[None]:
    """py-spy the first worker for most of the block: `shares` gets the component split, and
    with `summary` the full summary goes next to the results."""
    raw = Path(tempfile.mkdtemp(prefix="tasks-bench-profile-")) / f"{op}.raw"
    pid = service.worker_pids()[0]
    seconds = max(1.0, args.duration - 1)
    recorder = threading.Thread(target=profile.record, args=(pid, seconds, raw), daemon=True)
    recorder.start()
    try:
        yield
    finally:
        recorder.join()
        if raw.exists():
            shares.update(profile.split(raw))
            if summary:
                text = profile.summarise(raw)
                (args.output / f"{args.label}-profile-{op}.txt").write_text(text + "\n")
                print(f"bench: profile of {op} in {args.output / f'{args.label}-profile-{op}.txt'}")


def _measure(
    service: Any,
    args: argparse.Namespace,
    tokens: Path,
    op: str,
    conns: int,
    limit: str,
    url: str,
) -> dict[str, Any]:
    sampled = (
        limit == "off" and conns == min(args.connections) and service.workers == max(args.workers)
    )
    summary = sampled and args.profile == op
    shares: dict[str, float] = {}
    cpu_before = service.cpu_seconds()
    with service.peak_rss() as rss, backend_cpu(url) as pg_seconds:
        load = run_wrk(
            service.base_url,
            op,
            tokens,
            connections=conns,
            seconds=args.duration,
            tasks_per_user=args.tasks_per_user,
        )
    cpu_after = service.cpu_seconds()
    if summary or (sampled and not args.no_split):
        # A run of its own: py-spy's sampling costs the worker CPU, so it stays out of the
        # figures above and only yields the split.
        with _profiled(service, args, op, summary, shares):
            run_wrk(
                service.base_url, op, tokens, connections=conns, seconds=args.duration,
                tasks_per_user=args.tasks_per_user,
            )
    requests = max(1, load.requests)
    cpu_ms = (cpu_after - cpu_before) * 1000 / requests
    pg_us = pg_seconds[0] * 1e6 / requests
    run = {"op": op, "workers": service.workers, "connections": conns, "rate_limit": limit}
    run |= asdict(load) | {"errors": load.errors, "rss_mb": [round(mb, 1) for mb in rss]}
    # CPU per request moves far less than req/s when other work shares the machine.
    run |= {"cpu_ms_per_request": round(cpu_ms, 3), "load_average": os.getloadavg()[0]}
    run |= {"pg_us_per_request": round(pg_us, 1)}
    if shares:
        # py-spy samples Python holding the GIL; the split scales the server's CPU by them.
        run["cpu_us_split"] = {
            name: round(cpu_ms * 1000 * share, 1) for name, share in shares.items()
        }
    line = (
        f"  {op:<8} w={service.workers} c={conns:<3} limiter={limit:<8} {load.rps:8.0f} req/s"
        f"  p50 {load.p50_ms:6.1f} ms  p99 {load.p99_ms:6.1f} ms  errors {load.errors}"
        f"  cpu {cpu_ms:.2f} ms/req  pg {pg_us:.0f} us/req  load {run['load_average']:.1f}"
    )
    print(line, flush=True)
    return run


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    find_pgbench()
    args.output.mkdir(parents=True, exist_ok=True)
    dataset = Dataset(args.users, args.tasks_per_user)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[str, Any] = {
        "label": args.label,
        "started": started,
        "ops": args.ops,
        "dataset": asdict(dataset),
        "durations": {"wrk": args.duration, "pgbench": args.floor_duration},
        "floors": {},
        "runs": [],
    }
    t0 = time.monotonic()
    with admin_url(args) as admin, bench_database(admin, dataset) as url:
        results["machine"] = _machine(url, args.source)
        results["load_average"] = os.getloadavg()[0]
        print(f"bench: database seeded ({dataset.users} users x {dataset.tasks_per_user} tasks)")
        for op in args.ops:
            floor = measure_floor(url, op, dataset, seconds=args.floor_duration)
            results["floors"][op] = asdict(floor)
            print(f"  floor {op:<6} {floor.tps:8.0f} tx/s", flush=True)
        secret = secrets.token_urlsafe(48)
        work = Path(tempfile.mkdtemp(prefix="tasks-bench-run-"))
        tokens = work / "tokens.txt"
        write_tokens(tokens, secret, dataset.users, ttl_seconds=6 * 3600)
        plan = [(w, "off") for w in args.workers]
        if not args.no_limiter_row and "list" in args.ops:
            plan.append((max(args.workers), LIMITER_ON))
        for workers, limit in plan:
            env = {"DATABASE_URL": url, "JWT_SECRET": secret, "RATE_LIMIT": limit}
            with serve(workers, env, work / "server.log", args.source) as service:
                run_wrk(
                    service.base_url, "list", tokens, connections=max(args.connections),
                    seconds=args.warmup, tasks_per_user=dataset.tasks_per_user,
                )
                matrix = [(op, c) for op in args.ops for c in args.connections]
                if limit != "off":
                    matrix = [("list", min(args.connections))]
                for op, conns in matrix:
                    results["runs"].append(
                        _measure(service, args, tokens, op, conns, limit, url)
                    )
        if not args.no_framework_floor:
            env = {"DATABASE_URL": url, "JWT_SECRET": secret, "RATE_LIMIT": "off"}
            with serve(
                max(args.workers), env, work / "framework.log", app=FRAMEWORK_FLOOR
            ) as service:
                run_wrk(
                    service.base_url, "constant", tokens, connections=max(args.connections),
                    seconds=args.warmup, tasks_per_user=dataset.tasks_per_user,
                )
                for conns in args.connections:
                    results["runs"].append(
                        _measure(service, args, tokens, "constant", conns, "off", url)
                    )
    results["seconds"] = round(time.monotonic() - t0, 1)
    results["targets"] = report.targets(results)
    json_path = args.output / f"{args.label}.json"
    png_path = args.output / f"{args.label}.png"
    report.save_json(results, json_path)
    compare = None
    if args.compare:
        import json

        compare = json.loads(args.compare.read_text())
    charted = report.chart(results, png_path, compare)
    print()
    print(report.table(results))
    print()
    print(report.targets_text(results["targets"]))
    wrote = f"{json_path} and {png_path}" if charted else f"{json_path} (no chart: the bench extra)"
    print(f"\nbench: {results['seconds']} s; wrote {wrote}")
    print(f"bench: server log {work / 'server.log'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
