-- Transactional outbox (O1-O6): events, per-stream counters and the NOTIFY trigger.

-- One row per stream: the last seq handed out. Appenders bump it with
-- INSERT ... ON CONFLICT DO UPDATE inside their own transaction, which serialises
-- appenders of the same stream only and keeps seq gap-free (a rollback undoes the bump).
CREATE TABLE portside_outbox_streams (
    stream   text   PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq > 0)
);

CREATE TABLE portside_outbox_events (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    stream       text        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    type         text        NOT NULL,
    payload      jsonb       NOT NULL,
    key          text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    CONSTRAINT portside_outbox_events_stream_seq UNIQUE (stream, seq)
);

-- The publisher's work list: small, because published rows leave it.
CREATE INDEX portside_outbox_events_unpublished
    ON portside_outbox_events (stream, seq)
    WHERE published_at IS NULL;

-- Retention deletes by age of publication, in batches.
CREATE INDEX portside_outbox_events_published_at
    ON portside_outbox_events (published_at)
    WHERE published_at IS NOT NULL;

-- A constant payload lets Postgres fold every notification of a transaction into one,
-- and a statement-level trigger fires once per INSERT statement, not once per row.
CREATE FUNCTION portside_outbox_notify() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portside_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER portside_outbox_events_notify
    AFTER INSERT ON portside_outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION portside_outbox_notify();
