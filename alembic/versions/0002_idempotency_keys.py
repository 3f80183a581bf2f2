"""Idempotency keys: the stored outcome of a POST, per user, under the same row-level security.

A client that retries `POST /api/{user_id}/tasks` with the same `Idempotency-Key` gets the first
response back instead of a second task. The security statements are a frozen copy of
policies/10_privileges.sql and idempotency_key.sql as of this revision;
tests/db/test_policies_match_catalog.py proves the migrated catalog equals policies/.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE idempotency_key (
            user_id             text NOT NULL,
            key                 varchar(255) NOT NULL,
            request_fingerprint text NOT NULL,
            status_code         smallint NOT NULL,
            response_body       text NOT NULL,
            location            text,
            created_at          timestamptz NOT NULL DEFAULT now(),
            expires_at          timestamptz NOT NULL DEFAULT now() + interval '24 hours',
            CONSTRAINT idempotency_key_pkey PRIMARY KEY (user_id, key),
            CONSTRAINT idempotency_key_user_id_length
                CHECK (char_length(user_id) BETWEEN 1 AND 255),
            CONSTRAINT idempotency_key_key_visible_ascii CHECK (key ~ '^[!-~]{1,255}$'),
            CONSTRAINT idempotency_key_fingerprint_sha256
                CHECK (request_fingerprint ~ '^[0-9a-f]{64}$'),
            CONSTRAINT idempotency_key_status_success CHECK (status_code BETWEEN 200 AND 299)
        )
        """
    )
    op.execute(
        "CREATE INDEX idempotency_key_user_expires_idx ON idempotency_key (user_id, expires_at)"
    )

    op.execute("REVOKE ALL ON TABLE idempotency_key FROM tasks_app")
    op.execute("GRANT SELECT, DELETE ON TABLE idempotency_key TO tasks_app")
    op.execute(
        "GRANT INSERT (user_id, key, request_fingerprint, status_code, response_body, location)"
        " ON TABLE idempotency_key TO tasks_app"
    )

    op.execute("ALTER TABLE idempotency_key ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE idempotency_key FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY idempotency_key_select_own ON idempotency_key"
        f" FOR SELECT TO tasks_app USING ({OWN})"
    )
    op.execute(
        f"CREATE POLICY idempotency_key_insert_own ON idempotency_key"
        f" FOR INSERT TO tasks_app WITH CHECK ({OWN})"
    )
    op.execute(
        f"CREATE POLICY idempotency_key_delete_own ON idempotency_key"
        f" FOR DELETE TO tasks_app USING ({OWN})"
    )


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_key")
