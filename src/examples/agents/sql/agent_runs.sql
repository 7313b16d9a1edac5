-- Named queries of SqlAgentRunStore. Table: the examples' migration 0002_agent_runs.sql.
-- Every query runs on the connection of an outbox unit of work, so run rows and the run's
-- events commit together.

-- name: insert_run
INSERT INTO agent_runs
       (id, agent, input, steps, step_delay_ms, fail_at_step, failure, status, last_seq, job_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)
RETURNING *;

-- name: get_run
SELECT * FROM agent_runs WHERE id = $1;

-- name: lock_run
SELECT * FROM agent_runs WHERE id = $1 FOR UPDATE;

-- name: save_run
UPDATE agent_runs
   SET status = $2, started_step = $3, completed_steps = $4, last_seq = $5, attempts = $6,
       result = $7::jsonb, error = $8, finished_at = $9, updated_at = now()
 WHERE id = $1
RETURNING *;
