"""How a proof reads: the matrix for people, `{"cells", "violations"}` JSON for machines."""

from __future__ import annotations

import json

from db.prove.matrix import Proof

_HEADER = ("TABLE", "COMMAND", "IDENTITY", "EXPECTED", "ACTUAL", "DENIED BY")


def render_json(proof: Proof) -> str:
    return json.dumps(proof.as_json(), indent=2)


def render_table(proof: Proof) -> str:
    rows = [
        (
            c.table,
            c.command,
            c.identity,
            c.expected.value,
            # A violation is shouted, so it survives a glance down a long column.
            c.actual.value if c.holds else c.actual.value.upper(),
            c.denied_by or "",
        )
        for c in proof.cells
    ]
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        + ("" if row is _HEADER or row[3] == row[4] else "  <- violation")
        for row in [_HEADER, *rows]
    ]
    lines.append(
        f"identity none: the transaction never sets app.user_id "
        f"(current_setting reads {proof.none_reads_as})"
    )
    lines.append(summary(proof))
    return "\n".join(lines)


def summary(proof: Proof) -> str:
    tables = len({c.table for c in proof.cells})
    if not proof.violations:
        return (
            f"{len(proof.cells)} cells over {tables} table(s), 0 violations: "
            "each user reaches only their own rows"
        )
    return f"{len(proof.cells)} cells over {tables} table(s), {len(proof.violations)} violation(s)"
