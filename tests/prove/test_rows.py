"""Synthetic rows are built from the catalog: any tenant table's required columns get values
its own CHECK constraints accept, found by trying candidates, never from a per-table sample."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from db.prove.rows import SampleUnavailable, insert_statements, table_shape

STRICT_TABLE = """
CREATE TABLE strict_note (
    user_id     text NOT NULL,
    id          uuid NOT NULL,
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    status      smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
    payload     jsonb NOT NULL,
    raw         bytea NOT NULL,
    flagged     boolean NOT NULL,
    due         timestamptz NOT NULL,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
)
"""


def first_accepted(conn: psycopg.Connection[Any], table: str, serial: int) -> int:
    for round_, (statement, params) in enumerate(
        insert_statements(table_shape(conn, "public", table), "prove-user", serial)
    ):
        try:
            with conn.transaction():
                conn.execute(statement, params)
            return round_
        except psycopg.errors.CheckViolation:
            continue
    raise AssertionError("no round was accepted")


def test_a_row_is_found_that_the_tables_checks_accept(conn: psycopg.Connection[Any]) -> None:
    conn.execute(STRICT_TABLE)
    first_accepted(conn, "strict_note", 1)
    row = conn.execute("SELECT count(*) FROM strict_note WHERE user_id = 'prove-user'").fetchone()
    assert row == (1,)


def test_only_the_columns_the_table_cannot_fill_are_inserted(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(STRICT_TABLE)
    inserted = {c.name for c in table_shape(conn, "public", "strict_note").inserted()}
    assert "note" not in inserted and "created_at" not in inserted
    assert {"user_id", "id", "fingerprint", "status"} <= inserted


def test_repeated_rows_never_collide_on_a_unique_text_key(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE keyed_note (user_id text NOT NULL, key text NOT NULL UNIQUE)")
    first_accepted(conn, "keyed_note", 1)
    first_accepted(conn, "keyed_note", 2)


def test_a_required_column_of_an_unknown_type_is_reported_not_guessed(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE TABLE shaped_note (user_id text NOT NULL, spot point NOT NULL)")
    with pytest.raises(SampleUnavailable, match="spot"):
        insert_statements(table_shape(conn, "public", "shaped_note"), "prove-user", 1)
