-- Agent runs (A7): one row per run, written in the same transaction as the run's outbox
-- events (stream = run id), so the row's progress and the event stream never disagree.
-- IF NOT EXISTS: databases migrated before the examples left the core already have this
-- table (from portside's own 0020_agent_runs, the same statements).

CREATE TABLE IF NOT EXISTS agent_runs (
    id              text        PRIMARY KEY,
    agent           text        NOT NULL,
    input           text        NOT NULL,
    steps           integer     NOT NULL CHECK (steps BETWEEN 1 AND 1000),
    step_delay_ms   integer     NOT NULL DEFAULT 0 CHECK (step_delay_ms >= 0),
    fail_at_step    integer     CHECK (fail_at_step IS NULL OR fail_at_step BETWEEN 1 AND steps),
    failure         text        NOT NULL DEFAULT 'transient'
                                CHECK (failure IN ('transient', 'permanent')),
    status          text        NOT NULL
                                CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    started_step    integer     NOT NULL DEFAULT 0 CHECK (started_step BETWEEN 0 AND steps),
    completed_steps integer     NOT NULL DEFAULT 0
                                CHECK (completed_steps BETWEEN 0 AND started_step),
    last_seq        bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    job_id          text        NOT NULL,
    result          jsonb,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT agent_runs_finished_when_terminal
        CHECK ((finished_at IS NOT NULL) = (status IN ('completed', 'failed')))
);

-- "Recent runs" listings and retention sweeps.
CREATE INDEX IF NOT EXISTS agent_runs_created_at ON agent_runs (created_at DESC);
