-- Helpers that make the pgTAP files read like sentences. Created inside each test file's
-- transaction, which is rolled back, so nothing is left behind in the audited database.
--
-- authenticate_as('alice') is exactly what the service does at the start of every request:
-- switch to the runtime role and set the identity, both transaction-locally (SET LOCAL).

CREATE FUNCTION authenticate_as(user_id text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', 'tasks_app', true);
    PERFORM set_config('app.user_id', user_id, true);
END
$$;

-- The runtime role with no identity at all: what a request that forgot to set one would get.
CREATE FUNCTION authenticate_anonymously() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('role', 'tasks_app', true);
END
$$;

-- What a pooled connection shows after an earlier transaction's SET LOCAL ended: ''.
CREATE FUNCTION clear_identity() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.user_id', '', true);
END
$$;

-- How many rows a statement touched: an UPDATE or DELETE that RLS filters touches 0 rows
-- rather than failing, and that count is the proof.
CREATE FUNCTION rows_affected(statement text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    affected bigint;
BEGIN
    EXECUTE statement;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN affected;
END
$$;
