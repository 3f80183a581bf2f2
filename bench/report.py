"""Results out: the printed table, the JSON file, the PNG chart and the issue's targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def ratio(run: Result, floors: dict[str, Result]) -> float | None:
    floor = floors.get(run["op"])
    return run["rps"] / floor["tps"] if floor else None


def table(results: Result) -> str:
    floors: dict[str, Result] = results["floors"]
    lines = ["floor: pgbench -M prepared, 8 clients, the service's own transactions"]
    if "load_average" in results:
        lines[0] += f" (1-min load average at start {results['load_average']:.1f})"
    lines += [
        f"  {op:<7} {f['tps']:>9.0f} tx/s   mean {f['latency_ms']:.2f} ms   failed {f['failed']}"
        for op, f in floors.items()
    ]
    lines.append("")
    header = (
        f"{'workers':>7} {'op':<9} {'limiter':<8} {'conns':>5} {'req/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'errors':>6} {'of floor':>8} {'RSS/worker MB':>14} {'CPU ms/req':>10} "
        f"{'PG us/req':>9} {'load':>5}"
    )
    lines += [header, "-" * len(header)]
    for run in results["runs"]:
        share = ratio(run, floors)
        rss = "/".join(f"{mb:.0f}" for mb in run["rss_mb"]) or "-"
        op = "framework" if run["op"] == "constant" else run["op"]
        lines.append(
            f"{run['workers']:>7} {op:<9} {run['rate_limit']:<8} {run['connections']:>5} "
            f"{run['rps']:>8.0f} {run['p50_ms']:>7.1f} {run['p99_ms']:>7.1f} "
            f"{run['errors']:>6} {(f'{share:.1%}' if share is not None else '-'):>8} {rss:>14} "
            f"{run.get('cpu_ms_per_request', float('nan')):>10.2f} "
            f"{run.get('pg_us_per_request', float('nan')):>9.0f} "
            f"{run.get('load_average', float('nan')):>5.1f}"
        )
    lines += ["", split_table(results)]
    return "\n".join(lines)


def split_table(results: Result) -> str:
    """CPU per request by component, where a run was sampled (fewest connections, most workers).

    The Python components come from py-spy's samples of one worker scaled to the server's CPU
    per request; PostgreSQL's is its backends' CPU over the same run. "framework" is the
    constant list through the same stack (bench/framework_floor.py).
    """
    lines = [
        "CPU us per request by component (py-spy split of the server's CPU; PostgreSQL's"
        " backends measured)",
        f"{'op':<10} {'conns':>5} {'http+framework':>14} {'jwt':>6} {'driver':>7} {'json':>6}"
        f" {'postgresql':>10} {'total':>7}",
    ]
    for run in results["runs"]:
        split = run.get("cpu_us_split")
        if not split or run["rate_limit"] != "off":
            continue
        pg = run.get("pg_us_per_request", 0.0)
        op = "framework" if run["op"] == "constant" else run["op"]
        total = sum(split.values()) + pg
        lines.append(
            f"{op:<10} {run['connections']:>5} {split.get('http+framework', 0):>14.0f}"
            f" {split.get('jwt', 0):>6.0f} {split.get('driver', 0):>7.0f}"
            f" {split.get('json', 0):>6.0f} {pg:>10.0f} {total:>7.0f}"
        )
    return "\n".join(lines)


def _find(results: Result, op: str, connections: int, workers: int = 2) -> Result | None:
    wanted = (op, connections, workers, "off")
    for run in results["runs"]:
        if (run["op"], run["connections"], run["workers"], run["rate_limit"]) == wanted:
            found: Result = run
            return found
    return None


def targets(results: Result) -> list[Result]:
    """The issue's targets (2 workers), each with the measured value and whether it is met."""
    checks: list[Result] = []

    def check(name: str, value: float | None, goal: str, met: bool | None) -> None:
        checks.append({"target": name, "value": value, "goal": goal, "met": met})

    floors = results["floors"]
    list8 = _find(results, "list", 8)
    if list8 and "list" in floors:
        share = ratio(list8, floors)
        check("list at 8 connections, share of floor", share, ">= 20% (goal 25%)",
              share is not None and share >= 0.20)
        check("list p99 at 8 connections (ms)", list8["p99_ms"], "<= 25", list8["p99_ms"] <= 25)
    framework = _find(results, "constant", 8)
    for op in results["ops"]:
        at8 = _find(results, op, 8)
        for conns, kept_goal in ((64, 0.80), (256, 0.75)):
            at = _find(results, op, conns)
            if at8 and at:
                kept = at["rps"] / at8["rps"]
                check(f"{op} throughput {conns} vs 8 connections", kept,
                      f">= {kept_goal:.0%}", kept >= kept_goal)
            if at:
                check(f"{op} errors at {conns} connections", at["errors"], "0", at["errors"] == 0)
        if at8 and framework:
            cost = at8["cpu_ms_per_request"] / framework["cpu_ms_per_request"]
            check(f"{op} CPU per request vs the framework floor at 8 connections", cost,
                  "(information)", None)
    return checks


def targets_text(checks: list[Result]) -> str:
    lines = ["targets (2 workers):"]
    for c in checks:
        value = c["value"]
        shown = f"{value:.1%}" if isinstance(value, float) and value < 5 else f"{value:.1f}"
        if isinstance(value, int):
            shown = str(value)
        if c["met"] is None and isinstance(value, float):
            shown = f"{value:.2f}x"
        verdict = "info " if c["met"] is None else "met  " if c["met"] else "SHORT"
        lines.append(f"  {verdict} {c['target']}: {shown} ({c['goal']})")
    return "\n".join(lines)


def save_json(results: Result, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def chart(results: Result, path: Path, compare: Result | None = None) -> bool:
    """Per operation: req/s and p99 against connections, per worker count (dashed: `compare`).

    False, and no file, without matplotlib (the `bench` extra): the tables are the result."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = results["ops"]
    fig, axes = plt.subplots(2, len(ops), figsize=(4.2 * len(ops), 7.5), squeeze=False)
    for column, op in enumerate(ops):
        rate_ax, p99_ax = axes[0][column], axes[1][column]
        for data, style, tag in ((results, "-o", ""), (compare, "--x", " (before)")):
            if data is None:
                continue
            for workers in sorted({r["workers"] for r in data["runs"]}):
                runs = sorted(
                    (
                        r
                        for r in data["runs"]
                        if r["op"] == op and r["workers"] == workers and r["rate_limit"] == "off"
                    ),
                    key=lambda r: r["connections"],
                )
                if not runs:
                    continue
                conns = [r["connections"] for r in runs]
                label = f"{workers} worker{'s' if workers > 1 else ''}{tag}"
                rate_ax.plot(conns, [r["rps"] for r in runs], style, label=label)
                p99_ax.plot(conns, [r["p99_ms"] for r in runs], style, label=label)
        floor = results["floors"].get(op)
        title = f"{op}" + (f" (floor {floor['tps']:.0f} tx/s)" if floor else "")
        rate_ax.set_title(title)
        rate_ax.set_ylabel("requests/s")
        p99_ax.set_ylabel("p99 latency (ms)")
        for ax in (rate_ax, p99_ax):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("connections")
            ax.grid(True, alpha=0.3)
            ax.set_ylim(bottom=0)
        rate_ax.legend(fontsize=7)
    fig.suptitle(f"tasks-api vs its pgbench floor - {results['label']} ({results['started']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
