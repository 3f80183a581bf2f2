-- The update endpoint's transaction (PATCH /api/{user}/tasks/{id} with {"completed": ...}).
-- The task's UUID is spelled as in get.sql.
\set uid random(1, :users)
\set n random(1, :tasks_per_user)
\set k :uid * 1000 + :n
\set done random(0, 1)
BEGIN;
SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true), set_config('statement_timeout', :statement_timeout, true), set_config('idle_in_transaction_session_timeout', :idle_timeout, true);
UPDATE task SET completed=:done WHERE task.id = ('00000000-0000-4000-8000-' || lpad(:k, 12, '0'))::UUID AND task.user_id = :uid::VARCHAR RETURNING task.id, task.user_id, task.title, task.description, task.completed, task.created_at, task.updated_at;
COMMIT;
