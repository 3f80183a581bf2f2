-- Default deny: as tasks_app without an identity (never set, or '' as a pooled connection shows
-- after an earlier SET LOCAL ended), no row is visible and no row can be written.
-- Rows are seeded first by the connecting (migrator) role, which must be able to bypass RLS
-- (a superuser, or on Neon the owner role with BYPASSRLS); all of it is rolled back.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
\ir helpers/authenticate.sql

SELECT plan(10);

INSERT INTO task (user_id, title) VALUES ('alice', 'alice: groceries'), ('bob', 'bob: taxes');

SELECT is(current_setting('app.user_id', true), NULL, 'a new session carries no identity');

SELECT authenticate_anonymously();
SELECT is(current_user::text, 'tasks_app', 'the transaction now runs as tasks_app');
SELECT is_empty('SELECT * FROM task', 'with no identity, no task is visible');
SELECT throws_ok(
    $$INSERT INTO task (user_id, title) VALUES ('alice', 'sneaked in')$$,
    '42501', 'new row violates row-level security policy for table "task"',
    'with no identity, no task can be inserted, not even for an existing user');
SELECT is(rows_affected($$UPDATE task SET completed = true$$), 0::bigint,
          'with no identity, an UPDATE touches no row');
SELECT is(rows_affected($$DELETE FROM task$$), 0::bigint,
          'with no identity, a DELETE touches no row');

SELECT clear_identity();
SELECT is_empty('SELECT * FROM task', 'with an empty identity, no task is visible');
SELECT throws_ok(
    $$INSERT INTO task (user_id, title) VALUES ('', 'no one')$$,
    '42501', 'new row violates row-level security policy for table "task"',
    'with an empty identity, no task can be inserted, not even one owned by the empty user');
SELECT is(rows_affected($$DELETE FROM task$$), 0::bigint,
          'with an empty identity, a DELETE touches no row');

SELECT throws_ok('TRUNCATE task', '42501', 'permission denied for table task',
                 'TRUNCATE, which would ignore RLS, is refused');

SELECT * FROM finish();
ROLLBACK;
