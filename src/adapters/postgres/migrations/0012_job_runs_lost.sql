-- Run history that never shows ghosts (Q15): an attempt whose worker died is closed as 'lost'.
-- A live worker vouches for its long-running attempts in seen_at; a running row nobody vouched
-- for since its job's lock expired is closed by close_lost_runs.

ALTER TABLE job_runs DROP CONSTRAINT job_runs_status_check;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_status_check
    CHECK (status IN ('running', 'completed', 'retrying', 'failed', 'lost'));

ALTER TABLE job_runs ADD COLUMN seen_at timestamptz;

-- The lost-run check reads running rows only.
CREATE INDEX job_runs_running ON job_runs (started_at) WHERE status = 'running';
