"""Idempotency keys, proved in SQL as `tasks_app` with no Python filter: each user sees only theirs.

Refusals are asserted with their exact SQLSTATE and message, so a refusal for the wrong reason
does not pass for the right one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

AsUser = Callable[..., Any]
FINGERPRINT = "0" * 64
INSERT = (
    "INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code, response_body)"
    " VALUES (%s, %s, %s, 201, '{}')"
)


@pytest.fixture
def bobs_key(owner_conn: psycopg.Connection, bob: str) -> str:
    owner_conn.execute(INSERT, (bob, "bobs-key", FINGERPRINT))
    return "bobs-key"


def count_keys(conn: Any, user: str) -> int:
    row = conn.execute("SELECT count(*) FROM idempotency_key WHERE user_id = %s", (user,))
    return int(row.fetchone()[0])


def test_a_user_sees_none_of_another_users_keys(
    as_user: AsUser, alice: str, bob: str, bobs_key: str
) -> None:
    with as_user(alice) as conn:
        assert conn.execute("SELECT count(*) FROM idempotency_key").fetchone() == (0,)
    with as_user(bob) as conn:
        assert count_keys(conn, bob) == 1


def test_without_an_identity_no_key_is_visible(as_user: AsUser, bobs_key: str) -> None:
    with as_user(None) as conn:
        assert conn.execute("SELECT count(*) FROM idempotency_key").fetchone() == (0,)


def test_a_key_cannot_be_recorded_for_another_user(as_user: AsUser, alice: str, bob: str) -> None:
    with as_user(alice) as conn, pytest.raises(errors.InsufficientPrivilege) as refused:
        conn.execute(INSERT, (bob, "planted", FINGERPRINT))
    assert refused.value.diag.message_primary == (
        'new row violates row-level security policy for table "idempotency_key"'
    )


def test_a_user_cannot_delete_another_users_key(
    as_user: AsUser, owner_conn: psycopg.Connection, alice: str, bob: str, bobs_key: str
) -> None:
    with as_user(alice, commit=True) as conn:
        deleted = conn.execute("DELETE FROM idempotency_key WHERE user_id = %s", (bob,))
        assert deleted.rowcount == 0
    assert count_keys(owner_conn, bob) == 1


def test_a_recorded_response_can_never_be_rewritten(
    as_user: AsUser, bob: str, bobs_key: str
) -> None:
    with as_user(bob) as conn, pytest.raises(errors.InsufficientPrivilege) as refused:
        conn.execute("UPDATE idempotency_key SET response_body = '{\"forged\":1}'")
    assert refused.value.diag.message_primary == "permission denied for table idempotency_key"


def test_the_expiry_cannot_be_chosen_by_the_caller(as_user: AsUser, alice: str) -> None:
    with as_user(alice) as conn, pytest.raises(errors.InsufficientPrivilege) as refused:
        conn.execute(
            "INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code,"
            " response_body, expires_at) VALUES (%s, 'k', %s, 201, '{}', 'infinity')",
            (alice, FINGERPRINT),
        )
    assert refused.value.diag.message_primary == "permission denied for table idempotency_key"


def test_the_same_key_string_is_independent_per_user(
    as_user: AsUser, owner_conn: psycopg.Connection, alice: str, bob: str, bobs_key: str
) -> None:
    with as_user(alice, commit=True) as conn:
        conn.execute(INSERT, (alice, bobs_key, FINGERPRINT))
    assert count_keys(owner_conn, alice) == count_keys(owner_conn, bob) == 1
