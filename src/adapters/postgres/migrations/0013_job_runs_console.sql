-- The operator console's run queries (OPS1): business keys, and filters by status and time.

-- Business keys of the job's payload (organizationId, integrationId, date ...), matched with @>.
ALTER TABLE job_runs ADD COLUMN keys jsonb NOT NULL DEFAULT '{}'::jsonb;
CREATE INDEX job_runs_keys ON job_runs USING gin (keys jsonb_path_ops);

-- Unfiltered and status-filtered history pages, newest first.
CREATE INDEX job_runs_started ON job_runs (started_at DESC, id DESC);
CREATE INDEX job_runs_status_started ON job_runs (status, started_at DESC);
