-- Invariant: a transaction sees and changes only the tasks whose `user_id` equals the
-- transaction-local setting `app.user_id`. Without that setting (or with it empty) no row is
-- visible and no row can be written: default deny.
--
-- * ENABLE turns the policies on; FORCE applies them to the table owner as well, so a
--   misconfigured deployment that serves as the owner still cannot see across tenants.
-- * Every policy is scoped `TO tasks_app`; other roles get no policy and therefore no rows.
-- * `current_setting('app.user_id', true)` returns NULL when unset; nullif maps '' (what a
--   pooled connection shows after an earlier SET LOCAL ended) to NULL; `user_id = NULL` is never
--   true. The `(select ...)` wrapper makes PostgreSQL evaluate it once per statement, not per row.

ALTER TABLE task ENABLE ROW LEVEL SECURITY;
ALTER TABLE task FORCE ROW LEVEL SECURITY;

CREATE POLICY task_select_own ON task
    FOR SELECT TO tasks_app
    USING (user_id = (select nullif(current_setting('app.user_id', true), '')));

-- WITH CHECK refuses a row created for anyone but the caller.
CREATE POLICY task_insert_own ON task
    FOR INSERT TO tasks_app
    WITH CHECK (user_id = (select nullif(current_setting('app.user_id', true), '')));

-- USING picks the rows that may be changed; WITH CHECK keeps the new row in the same tenant.
CREATE POLICY task_update_own ON task
    FOR UPDATE TO tasks_app
    USING (user_id = (select nullif(current_setting('app.user_id', true), '')))
    WITH CHECK (user_id = (select nullif(current_setting('app.user_id', true), '')));

CREATE POLICY task_delete_own ON task
    FOR DELETE TO tasks_app
    USING (user_id = (select nullif(current_setting('app.user_id', true), '')));
