"""How an audit report reads: a table for people, `{"findings": [...]}` JSON for machines."""

from __future__ import annotations

import json
import textwrap

from db.audit.runner import Report

_WIDTH = 100


def render_json(report: Report) -> str:
    return json.dumps(report.as_json(), indent=2)


def render_table(report: Report) -> str:
    lines: list[str] = []
    if report.findings:
        rule_w = max(len("RULE"), *(len(f.rule) for f in report.findings))
        lines.append(f"{'SEVERITY':<8}  {'RULE':<{rule_w}}  OBJECT")
        for f in report.findings:
            lines.append(f"{f.severity.value:<8}  {f.rule:<{rule_w}}  {f.object}")
            indent = " " * (10 + rule_w + 2)
            lines += textwrap.wrap(
                f.explanation, _WIDTH, initial_indent=indent, subsequent_indent=indent
            )
            fix = f.fix.splitlines()
            lines.append(f"{indent}fix: {fix[0]}")
            lines += [f"{indent}     {line}" for line in fix[1:]]
    for e in report.errors:
        lines.append(f"could not run rule {e.rule}: {e.message}")
    lines.append(summary(report))
    return "\n".join(lines)


def summary(report: Report) -> str:
    if not report.findings and not report.errors:
        return "no findings: the live database enforces what policies/ declares"
    counts = {
        s: sum(1 for f in report.findings if f.severity.value == s)
        for s in ("ERROR", "WARN", "INFO")
    }
    text = f"{len(report.findings)} finding(s): " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n
    )
    if report.errors:
        text += f"; {len(report.errors)} rule(s) could not run"
    return text
