-- Invariant: `tasks_app` holds exactly the privileges the API needs and nothing more.
--   * It reads, creates and deletes tasks (rows further limited by the policies in task.sql).
--   * It may change only the mutable columns. `id`, `user_id` and `created_at` are never
--     updatable, so a task can never be moved to another tenant or have its history rewritten.
--     `updated_at` is set by the table's trigger, not by the caller.
--   * It inserts only the caller-supplied columns; `id` and the timestamps come from defaults,
--     so ids cannot be chosen (and so probed) by a client.
--   * It looks up, records and deletes idempotency keys (idempotency_key.sql), but never
--     updates one: a recorded response stays as it was sent. Timestamps (and so the expiry)
--     come from defaults, so a caller cannot make a key live longer than documented.
--   * No TRUNCATE (which ignores RLS), no REFERENCES, no TRIGGER, no ownership.

GRANT USAGE ON SCHEMA public TO tasks_app;

REVOKE ALL ON TABLE task FROM tasks_app;
GRANT SELECT, DELETE ON TABLE task TO tasks_app;
GRANT INSERT (user_id, title, description, completed) ON TABLE task TO tasks_app;
GRANT UPDATE (title, description, completed) ON TABLE task TO tasks_app;

REVOKE ALL ON TABLE idempotency_key FROM tasks_app;
GRANT SELECT, DELETE ON TABLE idempotency_key TO tasks_app;
GRANT INSERT (user_id, key, request_fingerprint, status_code, response_body, location)
    ON TABLE idempotency_key TO tasks_app;
