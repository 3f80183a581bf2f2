"""A fresh, migrated, seeded database for one benchmark run, dropped afterwards.

Task ids follow a scheme the load scripts can spell without asking the database:
`00000000-0000-4000-8000-` followed by `user * 1000 + n` in 12 digits (n = the user's n-th task).
User ids are the decimal numbers 1..users, so pgbench's integer variables are valid user ids.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from db.migrate import upgrade_to_head

TASK_ID_PREFIX = "00000000-0000-4000-8000-"
MAX_TASKS_PER_USER = 999

_SEED = """
INSERT INTO task (id, user_id, title, description, completed, created_at, updated_at)
SELECT (%(prefix)s || lpad((u * 1000 + n)::text, 12, '0'))::uuid,
       u::text,
       'seeded task ' || n,
       CASE WHEN n %% 3 = 0 THEN 'a seeded description for task ' || n END,
       n %% 2 = 0,
       now() - make_interval(mins => n),
       now() - make_interval(mins => n)
FROM generate_series(1, %(users)s) AS u, generate_series(1, %(per_user)s) AS n
"""


@dataclass(frozen=True)
class Dataset:
    users: int
    tasks_per_user: int

    def __post_init__(self) -> None:
        if not 1 <= self.tasks_per_user <= MAX_TASKS_PER_USER:
            raise ValueError(f"tasks per user must be 1..{MAX_TASKS_PER_USER} (the id scheme)")


def url_for(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def bench_database(admin_url: str, dataset: Dataset) -> Iterator[str]:
    """Create `tasks_bench_<random>`, migrate it, seed it as the owner; always drop it."""
    name = f"tasks_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(name)
            )
        )
    url = url_for(admin_url, name)
    try:
        upgrade_to_head(url)
        # The migrating login owns the table; seeding as it is the fast path (no RLS, one
        # statement) and never touches cluster-wide roles.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                _SEED,
                {
                    "prefix": TASK_ID_PREFIX,
                    "users": dataset.users,
                    "per_user": dataset.tasks_per_user,
                },
            )
            conn.execute("VACUUM ANALYZE task")
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
