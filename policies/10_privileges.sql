-- Invariant: `tasks_app` holds exactly the privileges the API needs and nothing more.
--   * It reads, creates and deletes tasks (rows further limited by the policies in task.sql).
--   * It may change only the mutable columns. `id`, `user_id` and `created_at` are never
--     updatable, so a task can never be moved to another tenant or have its history rewritten.
--     `updated_at` is set by the table's trigger, not by the caller.
--   * It inserts only the caller-supplied columns; `id` and the timestamps come from defaults,
--     so ids cannot be chosen (and so probed) by a client.
--   * No TRUNCATE (which ignores RLS), no REFERENCES, no TRIGGER, no ownership.

GRANT USAGE ON SCHEMA public TO tasks_app;

REVOKE ALL ON TABLE task FROM tasks_app;
GRANT SELECT, DELETE ON TABLE task TO tasks_app;
GRANT INSERT (user_id, title, description, completed) ON TABLE task TO tasks_app;
GRANT UPDATE (title, description, completed) ON TABLE task TO tasks_app;
