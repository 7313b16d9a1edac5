-- Queries of the Postgres outbox adapter; each starts with a "-- name: <name>" line.

-- name: append
-- Bump the stream's counter (a row lock held until the caller commits, so appenders of one
-- stream queue up and seq stays gap-free) and insert the event with that seq.
WITH next AS (
    INSERT INTO portside_outbox_streams AS s (stream, last_seq)
    VALUES ($1::text, 1)
    ON CONFLICT (stream) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING last_seq
)
INSERT INTO portside_outbox_events (stream, seq, type, payload, key)
SELECT $1::text, next.last_seq, $2::text, $3::text::jsonb, $4::text
FROM next
RETURNING id::text AS id, seq, created_at;

-- name: pending_streams
-- Distinct streams with unpublished events after $1 (round-robin cursor), skipping the
-- streams in $2 (handler retry back-off); a loose index scan: one descent per stream.
WITH RECURSIVE pending(stream) AS (
    (
        SELECT e.stream
        FROM portside_outbox_events e
        WHERE e.published_at IS NULL AND e.stream > $1::text AND e.stream <> ALL($2::text[])
        ORDER BY e.stream
        LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT e.stream
        FROM portside_outbox_events e
        WHERE e.published_at IS NULL AND e.stream > p.stream AND e.stream <> ALL($2::text[])
        ORDER BY e.stream
        LIMIT 1
    )
    FROM pending p
    WHERE p.stream IS NOT NULL
)
SELECT stream FROM pending WHERE stream IS NOT NULL LIMIT $3::int;

-- name: try_lock_streams
-- Claim streams, skipping the ones another publisher holds: the stream-level equivalent of
-- FOR UPDATE SKIP LOCKED. Transaction-scoped, so a commit or a crash releases them.
SELECT c.stream
FROM unnest($1::text[]) AS c(stream)
WHERE pg_try_advisory_xact_lock($2::int, hashtext(c.stream));

-- name: lock_stream
-- Wait for the stream (drain_once must not skip a stream another publisher is delivering).
SELECT pg_advisory_xact_lock($1::int, hashtext($2::text));

-- name: claim_events
-- The oldest unpublished events of each claimed stream. Must run as a statement after
-- try_lock_streams: its snapshot then includes every commit of the previous holder.
SELECT e.id::text AS id, e.stream, e.seq, e.type, e.payload::text AS payload, e.key,
       e.created_at, now() AS published_at
FROM unnest($1::text[]) AS c(stream)
CROSS JOIN LATERAL (
    SELECT *
    FROM portside_outbox_events x
    WHERE x.stream = c.stream AND x.published_at IS NULL AND x.seq <= $3::bigint
    ORDER BY x.seq
    LIMIT $2::int
) e
ORDER BY e.stream, e.seq;

-- name: mark_published
-- By primary key: a join on (stream, seq <= upto) tempts the planner into a sequential scan.
-- published_at = now(): the transaction's timestamp, as handed to the handlers.
UPDATE portside_outbox_events
SET published_at = now()
WHERE id = ANY($1::uuid[]) AND published_at IS NULL;

-- name: drain_targets
-- What drain_once must deliver: every stream with unpublished events, and its newest seq.
SELECT stream, max(seq) AS upto
FROM portside_outbox_events
WHERE published_at IS NULL AND ($1::text IS NULL OR stream = $1::text)
GROUP BY stream
ORDER BY stream;

-- name: read_stream
SELECT id::text AS id, stream, seq, type, payload::text AS payload, key, created_at,
       published_at
FROM portside_outbox_events
WHERE stream = $1::text AND seq >= $2::bigint
ORDER BY seq
LIMIT $3::int;

-- name: stream_heads
-- The last committed seq of each stream: the counter commits with the event it numbered.
SELECT stream, last_seq FROM portside_outbox_streams WHERE stream = ANY($1::text[]);

-- name: pending_count
SELECT count(*) FROM portside_outbox_events WHERE published_at IS NULL;

-- name: lag
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8
FROM portside_outbox_events
WHERE published_at IS NULL;

-- name: purge_published
WITH doomed AS (
    SELECT id
    FROM portside_outbox_events
    WHERE published_at IS NOT NULL
      AND published_at < clock_timestamp() - make_interval(secs => $1::float8)
    ORDER BY published_at
    LIMIT $2::int
    FOR UPDATE SKIP LOCKED
)
DELETE FROM portside_outbox_events e
USING doomed
WHERE e.id = doomed.id;
