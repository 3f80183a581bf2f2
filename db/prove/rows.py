"""Rows for synthetic users, built from the catalog so any tenant table can be probed.

A tenant table may have NOT NULL columns without defaults and CHECK constraints the prover
knows nothing about (an idempotency key's fingerprint must be 64 hex digits, its status 2xx).
Rather than a sample per table kept by hand, each type gets a short list of candidate values
and an insert tries them in rounds until PostgreSQL accepts one: the constraints stay the
database's business. Text candidates carry a counter, so repeated inserts never collide on a
unique key.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

# One round uses candidate i of every column; a value that fails a CHECK moves all to the next.
ROUNDS = 3

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory,
       a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


class SampleUnavailable(Exception):
    """A required column has a type no candidate value is known for."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): already quoted by PostgreSQL, safe to splice after `::`
    typname: str
    category: str
    required: bool


@dataclass(frozen=True)
class TableShape:
    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def identifier(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.name))

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def inserted(self) -> tuple[Column, ...]:
        """user_id plus every column the table cannot fill in by itself."""
        return tuple(c for c in self.columns if c.name == "user_id" or c.required)

    def harmless_update_column(self, updatable: set[str]) -> str:
        """A column to rewrite with itself: one the runtime role may update, else any other."""
        for column in self.columns:
            if column.name in updatable and column.name != "user_id":
                return column.name
        others = [c.name for c in self.columns if c.name != "user_id"]
        return others[0] if others else "user_id"


def table_shape(conn: psycopg.Connection[Any], schema: str, table: str) -> TableShape:
    rows = conn.execute(_COLUMNS, {"schema": schema, "table": table}).fetchall()
    return TableShape(schema, table, tuple(Column(*row) for row in rows))


def candidates(column: Column, serial: int) -> list[Any]:
    token = f"prove-{serial}"
    if column.typname == "uuid":
        return [str(uuid.uuid4()) for _ in range(ROUNDS)]
    if column.typname in ("json", "jsonb"):
        return ["{}", "[]", "{}"]
    if column.typname == "bytea":
        return [token.encode()] * ROUNDS
    if column.category == "S":
        return [token, hashlib.sha256(token.encode()).hexdigest(), "p"]
    if column.category == "N":
        return [1, 200, 0]
    if column.category == "B":
        return [False, True, False]
    if column.category == "D":
        return [datetime.now(UTC).isoformat()] * ROUNDS
    raise SampleUnavailable(
        f"no sample value for required column {column.name} of type {column.type}"
    )


def insert_statements(
    shape: TableShape, user_id: str, serial: int
) -> list[tuple[sql.Composed, list[Any]]]:
    """One INSERT per round, each filing a row under `user_id` (no RETURNING: see probes)."""
    columns = shape.inserted()
    if not any(c.name == "user_id" for c in columns):
        raise SampleUnavailable(f"{shape.qualified} has no user_id column to file rows under")
    values = {c.name: candidates(c, serial) for c in columns if c.name != "user_id"}
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        shape.identifier,
        sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
        sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Placeholder(), sql.SQL(c.type)) for c in columns
        ),
    )
    return [
        (statement, [user_id if c.name == "user_id" else values[c.name][i] for c in columns])
        for i in range(ROUNDS)
    ]
