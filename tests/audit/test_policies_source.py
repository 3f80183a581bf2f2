"""policies/ is the source: every tenant table of the migrated database has its own file there.

(What the files declare is proved equal to the live catalog by the drift rule and
tests/db/test_policies_match_catalog.py; this is about the source being complete and readable.)
"""

from __future__ import annotations

import psycopg

from db.catalog import POLICIES_DIR, declared_policy_names, tenant_tables


def test_every_tenant_table_has_its_own_policy_file(audit_db: str) -> None:
    with psycopg.connect(audit_db) as conn:
        tables = tenant_tables(conn)
    assert tables, "tenant tables are discovered from the migrated schema"
    for table in tables:
        assert (POLICIES_DIR / f"{table}.sql").is_file(), table


def test_policy_names_say_what_they_allow() -> None:
    for name in declared_policy_names():
        table_and_command, _, scope = name.rpartition("_")
        assert scope == "own", name
        assert table_and_command.rsplit("_", 1)[1] in {"select", "insert", "update", "delete"}
