-- The get endpoint's transaction (GET /api/{user}/tasks/{id}) for a random seeded task.
-- pgbench variables are numbers only, so the task's UUID is spelled on the server from the same
-- number the HTTP load script uses (bench/seed.py's id scheme); the plan is the same index probe.
\set uid random(1, :users)
\set n random(1, :tasks_per_user)
\set k :uid * 1000 + :n
BEGIN;
SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true), set_config('statement_timeout', :statement_timeout, true), set_config('idle_in_transaction_session_timeout', :idle_timeout, true);
SELECT task.id, task.user_id, task.title, task.description, task.completed, task.created_at, task.updated_at FROM task WHERE task.id = ('00000000-0000-4000-8000-' || lpad(:k, 12, '0'))::UUID AND task.user_id = :uid::VARCHAR;
COMMIT;
