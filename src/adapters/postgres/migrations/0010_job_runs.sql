-- Run history (A3) and the dead-letter store (A4) of the job platform.

-- One row per job attempt, written when the attempt starts and closed when it ends.
CREATE TABLE job_runs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        text        NOT NULL,
    queue         text        NOT NULL,
    job_name      text        NOT NULL,
    attempt       integer     NOT NULL CHECK (attempt >= 1),
    run_mode      text        NOT NULL CHECK (run_mode IN ('scheduled', 'manual', 'backfill')),
    status        text        NOT NULL
                              CHECK (status IN ('running', 'completed', 'retrying', 'failed')),
    failure_kind  text        CHECK (failure_kind IN ('transient', 'permanent')),
    error_class   text,
    error_message text,
    result        jsonb,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    CONSTRAINT job_runs_finished_after_start CHECK (finished_at IS NULL OR finished_at >= started_at)
);

-- "Runs of this job" (API, CLI) and "recent runs of this queue" (health).
CREATE INDEX job_runs_job_id ON job_runs (job_id, started_at DESC);
CREATE INDEX job_runs_queue_started ON job_runs (queue, started_at DESC);
CREATE INDEX job_runs_finished_at ON job_runs (finished_at) WHERE finished_at IS NOT NULL;

-- Jobs that failed for good: permanently, or on their last attempt. Kept 30 days by default.
CREATE TABLE job_failures (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    queue         text        NOT NULL,
    job_id        text        NOT NULL,
    job_name      text        NOT NULL,
    data          jsonb       NOT NULL,
    error_class   text        NOT NULL,
    error_message text        NOT NULL,
    error         text        GENERATED ALWAYS AS (
                                  CASE WHEN error_message = '' THEN error_class
                                       ELSE error_class || ': ' || error_message END
                              ) STORED,
    failure_kind  text        NOT NULL CHECK (failure_kind IN ('transient', 'permanent')),
    attempts      integer     NOT NULL CHECK (attempts >= 1),
    failed_at     timestamptz NOT NULL,
    retried_at    timestamptz,
    retry_job_id  text
);

CREATE INDEX job_failures_failed_at ON job_failures (failed_at DESC);
CREATE INDEX job_failures_queue ON job_failures (queue, failed_at DESC);
