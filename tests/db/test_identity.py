"""The identity statement: one definition, bound parameters, transaction-local settings."""

from __future__ import annotations

import re

import psycopg

from db.identity import (
    CONTROL_CHARACTER,
    IDENTITY_SQL,
    RUNTIME_ROLE,
    USER_ID_PATTERN,
    TransactionLimits,
    identity_params,
    identity_sql_with,
)


def test_every_value_is_a_bound_parameter() -> None:
    params = identity_params("alice", TransactionLimits())
    assert set(re.findall(r"%\((\w+)\)s", IDENTITY_SQL)) == set(params)
    assert "alice" not in IDENTITY_SQL


def test_every_setting_is_transaction_local() -> None:
    calls = IDENTITY_SQL.split("set_config(")[1:]
    assert len(calls) == 4
    assert all(", true)" in call for call in calls)


def test_the_statement_switches_to_the_runtime_role_with_the_user_and_limits(
    database_url: str,
) -> None:
    limits = TransactionLimits(statement_timeout_ms=1234, idle_in_transaction_timeout_ms=5678)
    with psycopg.connect(database_url) as conn:
        conn.execute(IDENTITY_SQL, identity_params("alice", limits))
        row = conn.execute(
            "SELECT current_user, current_setting('app.user_id'),"
            " current_setting('statement_timeout'),"
            " current_setting('idle_in_transaction_session_timeout')"
        ).fetchone()
        conn.rollback()
        after = conn.execute("SELECT current_user, current_setting('app.user_id', true)").fetchone()
    assert row == (RUNTIME_ROLE, "alice", "1234ms", "5678ms")
    assert after is not None and after[0] != RUNTIME_ROLE and after[1] in (None, "")


def test_tools_that_cannot_bind_get_the_same_statement_with_their_own_placeholders() -> None:
    names = {"role": ":role", "user_id": ":uid", "statement_timeout": ":st", "idle_timeout": ":it"}
    pgbench = identity_sql_with(names)
    assert "%(" not in pgbench
    assert pgbench == IDENTITY_SQL.replace("%(user_id)s", ":uid").replace(
        "%(role)s", ":role"
    ).replace("%(statement_timeout)s", ":st").replace("%(idle_timeout)s", ":it")


def test_a_user_id_in_a_path_has_no_control_character_and_no_slash() -> None:
    path_rule = re.compile(USER_ID_PATTERN)
    assert path_rule.match("alice") and path_rule.match("😀") and path_rule.match("josé")
    assert not path_rule.match("a/b")
    assert not path_rule.match("a\nb")
    assert not path_rule.match("a\x85b")


def test_control_characters_are_c0_del_and_c1() -> None:
    assert all(CONTROL_CHARACTER.search(ch) for ch in ("\x00", "\x1f", "\x7f", "\x9f"))
    assert not CONTROL_CHARACTER.search(" ~\xa0é😀")
