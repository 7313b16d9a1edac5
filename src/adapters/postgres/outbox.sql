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
INSERT INTO portside_outbox_events (stream, seq, type, payload, key, trace_context)
SELECT $1::text, next.last_seq, $2::text, $3::text::jsonb, $4::text, $5::text
FROM next
RETURNING id::text AS id, seq, created_at;

-- name: claim_streams
-- Find up to $3 streams with unpublished events, round-robin from the cursor $1 (so a hot
-- stream cannot starve the others) and skipping the streams in $2 (handler retry back-off),
-- then claim them, skipping any another publisher holds: the stream-level equivalent of
-- FOR UPDATE SKIP LOCKED. The claims are transaction-scoped advisory locks ($4 is their
-- namespace), so a commit or a crash releases them. Each scan is a loose index scan: one
-- descent of the "unpublished" index per stream, never a walk over all pending rows.
WITH RECURSIVE after_cursor(stream) AS (
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
    FROM after_cursor p
    WHERE p.stream IS NOT NULL
),
up_to_cursor(stream) AS (
    (
        SELECT e.stream
        FROM portside_outbox_events e
        WHERE e.published_at IS NULL AND e.stream <= $1::text AND e.stream <> ALL($2::text[])
        ORDER BY e.stream
        LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT e.stream
        FROM portside_outbox_events e
        WHERE e.published_at IS NULL AND e.stream > p.stream AND e.stream <= $1::text
          AND e.stream <> ALL($2::text[])
        ORDER BY e.stream
        LIMIT 1
    )
    FROM up_to_cursor p
    WHERE p.stream IS NOT NULL
),
candidates AS MATERIALIZED (
    -- The second scan runs only when the first leaves room under the limit.
    SELECT stream FROM (
        SELECT stream FROM after_cursor WHERE stream IS NOT NULL
        UNION ALL
        SELECT stream FROM up_to_cursor WHERE stream IS NOT NULL
    ) both_scans
    LIMIT $3::int
)
SELECT stream FROM candidates WHERE pg_try_advisory_xact_lock($4::int, hashtext(stream));

-- name: lock_stream
-- Wait for the stream (drain_once must not skip a stream another publisher is delivering).
SELECT pg_advisory_xact_lock($1::int, hashtext($2::text));

-- name: claim_events
-- The oldest unpublished events of each claimed stream. Must be a statement of its own,
-- after the claim: its snapshot then includes every commit of the previous holder.
SELECT e.id::text AS id, e.stream, e.seq, e.type, e.payload::text AS payload, e.key,
       e.created_at, now() AS published_at, e.trace_context
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
       published_at, trace_context
FROM portside_outbox_events
WHERE stream = $1::text AND seq >= $2::bigint
ORDER BY seq
LIMIT $3::int;

-- name: read_streams
-- The shared read of subscriptions: up to $3 events of each stream in $1, from its own
-- position in $2 (one statement per wake-up for every watched stream).
SELECT e.id::text AS id, e.stream, e.seq, e.type, e.payload::text AS payload, e.key,
       e.created_at, e.published_at, e.trace_context
FROM unnest($1::text[], $2::bigint[]) AS w(stream, next_seq)
CROSS JOIN LATERAL (
    SELECT *
    FROM portside_outbox_events x
    WHERE x.stream = w.stream AND x.seq >= w.next_seq
    ORDER BY x.seq
    LIMIT $3::int
) e
ORDER BY e.stream, e.seq;

-- name: pending_count
SELECT count(*) FROM portside_outbox_events WHERE published_at IS NULL;

-- name: streams
-- Every stream with its last seq and its committed, unpublished events (partial index).
SELECT s.stream, s.last_seq,
       (SELECT count(*) FROM portside_outbox_events e
         WHERE e.stream = s.stream AND e.published_at IS NULL) AS pending
  FROM portside_outbox_streams s
 ORDER BY s.stream;

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
