"""Run the live proof: one transaction, always rolled back, on a connection as the owner role.

Nothing here needs session state or server-side prepared statements, so the URL may be a
transaction-mode pooler (Neon's `-pooler` host): every statement runs inside the one
transaction, and identity is only ever set transaction-locally.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg

from db.audit.runner import libpq_url
from db.catalog import SecuritySnapshot, declared_snapshot, tenant_tables
from db.identity import RUNTIME_ROLE
from db.prove.matrix import COMMANDS, IDENTITIES, Access, Cell, Proof, expected_access, own_allowed
from db.prove.probes import ProbeFailed, TableProbe
from db.prove.rows import SampleUnavailable, table_shape

# A row some other transaction holds is not ours: wait briefly, never for a production lock.
_LOCK_TIMEOUT = "2s"

_UPDATABLE = """
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND has_column_privilege(%(role)s, a.attrelid, a.attnum, 'UPDATE')
"""


class ProofUnavailable(Exception):
    """The proof could not run (no tenant tables, no runtime role, a table it cannot sample)."""


def _synthetic_users() -> tuple[str, str]:
    # Random ids: a real tenant is never addressed, and two runs never meet.
    tag = secrets.token_hex(6)
    return f"prove-{tag}-a", f"prove-{tag}-b"


def run_proof(conn: psycopg.Connection[Any], *, schema: str | None = None) -> Proof:
    cells: list[Cell] = []
    none_reads_as = "''"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('lock_timeout', %s, true)", [_LOCK_TIMEOUT])
            if schema is None:
                row = conn.execute("SELECT current_schema()").fetchone()
                schema = str(row[0]) if row and row[0] else "public"
            tables = tenant_tables(conn, schema)
            if not tables:
                raise ProofUnavailable(f"no tenant tables in schema {schema}: nothing to prove")
            declared = declared_snapshot(conn, schema, tables, RUNTIME_ROLE)
            for table in tables:
                table_cells, reads_as = _prove_table(conn, schema, table, declared)
                cells += table_cells
                none_reads_as = reads_as
    except (ProbeFailed, SampleUnavailable) as exc:
        raise ProofUnavailable(str(exc)) from exc
    return Proof(tuple(cells), none_reads_as)


def _prove_table(
    conn: psycopg.Connection[Any], schema: str, table: str, declared: SecuritySnapshot
) -> tuple[list[Cell], str]:
    shape = table_shape(conn, schema, table)
    updatable = {
        str(r[0])
        for r in conn.execute(
            _UPDATABLE, {"table": shape.qualified, "role": RUNTIME_ROLE}
        ).fetchall()
    }
    probe = TableProbe(conn, shape, _synthetic_users(), updatable)
    own = own_allowed(declared, table, RUNTIME_ROLE)
    seeded = probe.seed()
    cells = []
    for command in COMMANDS:
        for identity in IDENTITIES:
            expected = expected_access(own, command, identity)
            if seeded or command == "insert":
                outcome = probe.probe(command, identity)
                actual, denied_by = outcome.access, outcome.denied_by
            else:
                actual, denied_by = Access.UNTESTED, None
            cells.append(
                Cell(
                    shape.qualified,
                    command,
                    identity,
                    expected,
                    actual,
                    denied_by if actual is Access.DENIED else None,
                )
            )
    return cells, probe.none_reads_as


def prove_database(url: str, *, schema: str | None = None) -> Proof:
    # No server-side prepared statements: the URL may be a transaction-mode pooler (Neon).
    with psycopg.connect(libpq_url(url), connect_timeout=10, prepare_threshold=None) as conn:
        return run_proof(conn, schema=schema)
