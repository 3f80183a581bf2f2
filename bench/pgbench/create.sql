-- The create endpoint's transaction (POST /api/{user}/tasks) as SQLAlchemy emits it.
\set uid random(1, :users)
BEGIN;
SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true), set_config('statement_timeout', :statement_timeout, true), set_config('idle_in_transaction_session_timeout', :idle_timeout, true);
INSERT INTO task (user_id, title, description, completed) VALUES (:uid::VARCHAR, :title::VARCHAR, :description::VARCHAR, :completed) RETURNING task.id, task.user_id, task.title, task.description, task.completed, task.created_at, task.updated_at;
COMMIT;
