"""Acting as the runtime role in SQL, the way the unit of work does (db/identity.py).

Tests that prove isolation in SQL alone open their transactions with the product's own identity
statement, so a change to it changes what they prove.
"""

from __future__ import annotations

from typing import Any

import psycopg

from db.identity import IDENTITY_SQL, RUNTIME_ROLE, TransactionLimits, identity_params


def act_as(conn: psycopg.Connection[Any], user_id: str | None) -> None:
    """Switch `conn`'s transaction to the runtime role as `user_id`; with None, the role alone
    (no identity: what a transaction sees if the identity never reached PostgreSQL)."""
    if user_id is None:
        conn.execute("SELECT set_config('role', %s, true)", (RUNTIME_ROLE,))
    else:
        conn.execute(IDENTITY_SQL, identity_params(user_id, TransactionLimits()))
