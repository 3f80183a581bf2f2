-- Isolation between two users, in SQL alone, as the service runs it: each request is
-- authenticate_as(user) inside one transaction. Everything is rolled back at the end.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
\ir helpers/authenticate.sql

SELECT plan(16);

SELECT authenticate_as('alice');
SELECT lives_ok($$INSERT INTO task (user_id, title) VALUES ('alice', 'alice: groceries')$$,
                'alice can create her own task');
INSERT INTO task (user_id, title) VALUES ('alice', 'alice: dentist') RETURNING id AS alice_task \gset

SELECT authenticate_as('bob');
INSERT INTO task (user_id, title) VALUES ('bob', 'bob: taxes') RETURNING id AS bob_task \gset
SELECT results_eq('SELECT title::text FROM task ORDER BY title', ARRAY['bob: taxes'],
                  'bob sees only his own task');

SELECT authenticate_as('alice');
SELECT results_eq('SELECT title::text FROM task ORDER BY title',
                  ARRAY['alice: dentist', 'alice: groceries'],
                  'alice sees only her own tasks');
SELECT is_empty(format('SELECT * FROM task WHERE id = %L', :'bob_task'),
                'alice cannot read bob''s task even by its id');
SELECT is_empty($$SELECT * FROM task WHERE user_id = 'bob'$$,
                'alice cannot read bob''s tasks by asking for his user_id');

SELECT throws_ok(
    $$INSERT INTO task (user_id, title) VALUES ('bob', 'planted by alice')$$,
    '42501', 'new row violates row-level security policy for table "task"',
    'alice cannot create a task for bob');
SELECT is(rows_affected(format('UPDATE task SET title = %L WHERE id = %L', 'hacked', :'bob_task')),
          0::bigint, 'alice cannot update bob''s task: no row is touched');
SELECT is(rows_affected(format('DELETE FROM task WHERE id = %L', :'bob_task')),
          0::bigint, 'alice cannot delete bob''s task: no row is touched');
SELECT throws_ok(
    format('UPDATE task SET user_id = %L WHERE id = %L', 'bob', :'alice_task'),
    '42501', 'permission denied for table task',
    'alice cannot hand her task to bob: user_id is not updatable');
SELECT throws_ok(
    format('UPDATE task SET created_at = now() - interval %L WHERE id = %L', '1 year', :'alice_task'),
    '42501', 'permission denied for table task',
    'alice cannot rewrite when her task was created');
SELECT throws_ok(
    $$INSERT INTO task (id, user_id, title) VALUES (gen_random_uuid(), 'alice', 'chosen id')$$,
    '42501', 'permission denied for table task',
    'alice cannot choose a task id');
SELECT throws_ok('TRUNCATE task', '42501', 'permission denied for table task',
                 'alice cannot TRUNCATE, which would bypass RLS for every tenant');
SELECT is(rows_affected(format('UPDATE task SET completed = true WHERE id = %L', :'alice_task')),
          1::bigint, 'alice can still update her own task');

SELECT authenticate_as('bob');
SELECT results_eq('SELECT title::text FROM task', ARRAY['bob: taxes'],
                  'after all of that, bob''s task is unchanged');
SELECT is(rows_affected(format('DELETE FROM task WHERE id = %L', :'alice_task')), 0::bigint,
          'bob cannot delete alice''s task either');
SELECT is(rows_affected(format('DELETE FROM task WHERE id = %L', :'bob_task')), 1::bigint,
          'bob can delete his own task');

SELECT * FROM finish();
ROLLBACK;
