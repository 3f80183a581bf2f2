"""Task table, the tasks_app runtime role, least-privilege grants and row-level security.

The security statements below are a frozen copy of policies/00_roles.sql, 10_privileges.sql and
task.sql as of this revision; tests/db/test_policies_match_catalog.py proves that the migrated
catalog equals what policies/ declares, so the copy cannot drift unnoticed.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN = "user_id = (select nullif(current_setting('app.user_id', true), ''))"


def upgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tasks_app') THEN
                CREATE ROLE tasks_app
                    NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
            END IF;
        END
        $$
        """
    )
    op.execute("GRANT tasks_app TO CURRENT_USER")

    op.execute(
        """
        CREATE TABLE task (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            user_id     text NOT NULL,
            title       varchar(255) NOT NULL,
            description text,
            completed   boolean NOT NULL DEFAULT false,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT task_user_id_length CHECK (char_length(user_id) BETWEEN 1 AND 255),
            CONSTRAINT task_title_trimmed_length
                CHECK (char_length(title) BETWEEN 1 AND 255 AND title = btrim(title)),
            CONSTRAINT task_description_length CHECK (char_length(description) <= 10000)
        )
        """
    )
    op.execute("CREATE INDEX task_user_created_idx ON task (user_id, created_at DESC, id)")
    op.execute(
        """
        CREATE FUNCTION task_touch_updated_at() RETURNS trigger
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
        BEGIN
            NEW.updated_at := clock_timestamp();
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION task_touch_updated_at() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER task_touch_updated_at BEFORE UPDATE ON task "
        "FOR EACH ROW EXECUTE FUNCTION task_touch_updated_at()"
    )

    op.execute("GRANT USAGE ON SCHEMA public TO tasks_app")
    op.execute("REVOKE ALL ON TABLE task FROM tasks_app")
    op.execute("GRANT SELECT, DELETE ON TABLE task TO tasks_app")
    op.execute("GRANT INSERT (user_id, title, description, completed) ON TABLE task TO tasks_app")
    op.execute("GRANT UPDATE (title, description, completed) ON TABLE task TO tasks_app")

    op.execute("ALTER TABLE task ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE task FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY task_select_own ON task FOR SELECT TO tasks_app USING ({OWN})")
    op.execute(f"CREATE POLICY task_insert_own ON task FOR INSERT TO tasks_app WITH CHECK ({OWN})")
    op.execute(
        f"CREATE POLICY task_update_own ON task FOR UPDATE TO tasks_app "
        f"USING ({OWN}) WITH CHECK ({OWN})"
    )
    op.execute(f"CREATE POLICY task_delete_own ON task FOR DELETE TO tasks_app USING ({OWN})")


def downgrade() -> None:
    # The role is cluster-wide and may serve other databases, so it stays; its grants on this
    # database's objects go with the objects.
    op.execute("DROP TABLE task")
    op.execute("DROP FUNCTION task_touch_updated_at()")
    op.execute("REVOKE USAGE ON SCHEMA public FROM tasks_app")
