-- The list endpoint's transaction (GET /api/{user}/tasks, default sort, limit 50 + 1 look-ahead),
-- statement for statement as SQLAlchemy emits it from db/session.py and db/tasks.py.
\set uid random(1, :users)
BEGIN;
SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true), set_config('statement_timeout', :statement_timeout, true), set_config('idle_in_transaction_session_timeout', :idle_timeout, true);
SELECT task.id, task.user_id, task.title, task.description, task.completed, task.created_at, task.updated_at FROM task WHERE task.user_id = :uid::VARCHAR ORDER BY task.created_at DESC, task.id ASC LIMIT :page::INTEGER;
COMMIT;
