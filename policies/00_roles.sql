-- Invariant: every API request runs as `tasks_app`, a role that can never see past row-level
-- security. It cannot log in (the login role switches to it per transaction with SET LOCAL ROLE),
-- is not a superuser, cannot bypass RLS, creates nothing and owns nothing.
--
-- The login role in DATABASE_URL may be powerful (on Neon the default role bypasses RLS); that is
-- why the switch happens inside every transaction, before any query touches a tenant table.
--
-- Objects are named without a schema: they live on the migration's search_path (normally public).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tasks_app') THEN
        CREATE ROLE tasks_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END
$$;

-- The role that migrates (and, in most deployments, serves) must be able to SET ROLE tasks_app.
-- Works for a non-superuser creator too (PostgreSQL 16+ gives the creator ADMIN on the new role).
GRANT tasks_app TO CURRENT_USER;
