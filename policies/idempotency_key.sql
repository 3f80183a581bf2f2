-- Invariant: a transaction sees, records and discards only the idempotency keys whose `user_id`
-- equals the transaction-local setting `app.user_id`; without it, none (default deny). One
-- user's key can therefore never replay, reveal or block another user's response: the same key
-- string sent by two users names two unrelated records.
--
-- * ENABLE + FORCE, as for `task`: the owner is bound too.
-- * Every policy is scoped `TO tasks_app` and reads the setting once per statement through
--   `(select ...)`; nullif maps the '' a pooled connection shows after an earlier SET LOCAL to NULL.
-- * There is no UPDATE policy (and no UPDATE grant): a recorded response is never rewritten.
--   Expired keys are deleted, then a new record may take the key.

ALTER TABLE idempotency_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_key FORCE ROW LEVEL SECURITY;

CREATE POLICY idempotency_key_select_own ON idempotency_key
    FOR SELECT TO tasks_app
    USING (user_id = (select nullif(current_setting('app.user_id', true), '')));

-- WITH CHECK refuses a record filed under anyone but the caller.
CREATE POLICY idempotency_key_insert_own ON idempotency_key
    FOR INSERT TO tasks_app
    WITH CHECK (user_id = (select nullif(current_setting('app.user_id', true), '')));

CREATE POLICY idempotency_key_delete_own ON idempotency_key
    FOR DELETE TO tasks_app
    USING (user_id = (select nullif(current_setting('app.user_id', true), '')));
