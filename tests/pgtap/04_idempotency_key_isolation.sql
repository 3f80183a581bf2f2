-- The second tenant table, idempotency_key, under the same rule: a user sees, records and
-- discards only their own keys; the same key string sent by two users names two records.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
\ir helpers/authenticate.sql

SELECT plan(9);

SELECT ok(relrowsecurity AND relforcerowsecurity,
          'row-level security is enabled and forced on idempotency_key')
  FROM pg_class WHERE oid = 'idempotency_key'::regclass;

SELECT authenticate_as('alice');
SELECT lives_ok(
    $$INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code, response_body)
      VALUES ('alice', 'retry-1', repeat('a', 64), 201, '{"title": "alice"}')$$,
    'alice can record the outcome of her POST');

SELECT authenticate_as('bob');
SELECT is_empty($$SELECT * FROM idempotency_key WHERE key = 'retry-1'$$,
                'bob cannot see alice''s key, even by its name');
SELECT lives_ok(
    $$INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code, response_body)
      VALUES ('bob', 'retry-1', repeat('b', 64), 201, '{"title": "bob"}')$$,
    'bob can use the same key string: it names his own record');
SELECT throws_ok(
    $$INSERT INTO idempotency_key (user_id, key, request_fingerprint, status_code, response_body)
      VALUES ('alice', 'retry-2', repeat('c', 64), 201, '{}')$$,
    '42501', 'new row violates row-level security policy for table "idempotency_key"',
    'bob cannot record a response under alice''s name');
SELECT is(rows_affected($$DELETE FROM idempotency_key WHERE user_id = 'alice'$$), 0::bigint,
          'bob cannot discard alice''s keys');
SELECT throws_ok(
    $$UPDATE idempotency_key SET response_body = '{}'$$,
    '42501', 'permission denied for table idempotency_key',
    'a recorded response is never rewritten: there is no UPDATE privilege');

SELECT authenticate_as('alice');
SELECT results_eq($$SELECT response_body FROM idempotency_key$$,
                  ARRAY['{"title": "alice"}'],
                  'alice still sees exactly her own record');

SELECT authenticate_anonymously();
SELECT clear_identity();
SELECT is_empty('SELECT * FROM idempotency_key', 'without an identity no key is visible');

SELECT * FROM finish();
ROLLBACK;
