-- Named queries of PostgresHistory (run history and dead letters). Tables: 0010_job_runs.sql.

-- name: record_start
INSERT INTO job_runs (job_id, queue, job_name, attempt, run_mode, status, started_at, keys)
VALUES ($1, $2, $3, $4, $5, 'running', $6, $7::jsonb)
RETURNING *;

-- name: record_starts
-- Many record_start rows in one statement; the caller matches the returned rows to its inputs.
INSERT INTO job_runs (job_id, queue, job_name, attempt, run_mode, status, started_at, keys)
SELECT job_id, queue, job_name, attempt, run_mode, 'running', started_at, keys::jsonb
  FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::timestamptz[],
              $7::text[])
       WITH ORDINALITY AS input (job_id, queue, job_name, attempt, run_mode, started_at, keys,
                                 position)
 ORDER BY position
RETURNING *;

-- name: record_finish
UPDATE job_runs
   SET status = $2, finished_at = $3, failure_kind = $4, error_class = $5,
       error_message = $6, result = $7::jsonb
 WHERE id = $1
RETURNING *;

-- name: record_finishes
-- Many record_finish updates in one statement (distinct ids); missing ids return no row.
UPDATE job_runs AS run
   SET status = input.status, finished_at = input.finished_at,
       failure_kind = input.failure_kind, error_class = input.error_class,
       error_message = input.error_message, result = input.result::jsonb
  FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
              $7::text[])
       AS input (id, status, finished_at, failure_kind, error_class, error_message, result)
 WHERE run.id = input.id
RETURNING run.*;

-- name: record_run
INSERT INTO job_runs (job_id, queue, job_name, attempt, run_mode, status, started_at,
                      finished_at, failure_kind, error_class, error_message, result, keys)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb);

-- name: touch_runs
UPDATE job_runs SET seen_at = $2 WHERE id = ANY($1::bigint[]) AND status = 'running';

-- name: close_lost_runs
-- One bounded batch of running attempts nobody vouched for since $2; closed at $1 (or their
-- start, if that is later). The caller repeats it until a batch comes back short.
UPDATE job_runs AS run
   SET status = 'lost', finished_at = greatest($1, run.started_at),
       failure_kind = 'transient', error_class = $5, error_message = $3
  FROM (SELECT id
          FROM job_runs
         WHERE status = 'running'
           AND coalesce(seen_at, started_at) < $2
         LIMIT $4
           FOR UPDATE SKIP LOCKED) AS stale
 WHERE run.id = stale.id;

-- name: get_run
SELECT * FROM job_runs WHERE id = $1;

-- name: list_runs
SELECT *
  FROM job_runs
 WHERE ($1::text IS NULL OR job_id = $1)
   AND ($2::text IS NULL OR queue = $2)
   AND ($3::text IS NULL OR job_name = $3)
   AND ($5::text IS NULL OR status = $5)
   AND ($6::text IS NULL OR run_mode = $6)
   AND ($7::jsonb IS NULL OR keys @> $7::jsonb)
   AND ($8::timestamptz IS NULL OR started_at >= $8)
   AND ($9::timestamptz IS NULL OR started_at < $9)
 ORDER BY started_at DESC, id DESC
 LIMIT $4 OFFSET $10;

-- name: run_buckets
-- Finished attempts since $1 per queue and per $2-second bucket aligned to the epoch.
SELECT queue,
       to_timestamp(floor(extract(epoch FROM finished_at) / $2) * $2) AS start,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'retrying')  AS retrying,
       count(*) FILTER (WHERE status = 'failed')    AS failed,
       count(*) FILTER (WHERE status = 'lost')      AS lost
  FROM job_runs
 WHERE finished_at >= $1
   AND ($3::text IS NULL OR queue = $3)
 GROUP BY 1, 2
 ORDER BY 2, 1;

-- name: queue_stats
SELECT queue,
       count(*)                                   AS finished,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'retrying')  AS retrying,
       count(*) FILTER (WHERE status = 'failed')    AS failed,
       count(*) FILTER (WHERE status = 'lost')      AS lost,
       avg(extract(epoch FROM finished_at - started_at))::float8 AS mean_duration
  FROM job_runs
 WHERE finished_at >= $1
 GROUP BY queue
 ORDER BY queue;

-- name: add_failure
INSERT INTO job_failures
       (queue, job_id, job_name, data, error_class, error_message, failure_kind, attempts,
        failed_at)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9)
RETURNING *;

-- name: list_failures
SELECT *
  FROM job_failures
 WHERE ($1::text IS NULL OR queue = $1)
   AND ($2::boolean OR retried_at IS NULL)
   AND ($4::text IS NULL OR job_name = $4)
   AND ($5::text IS NULL OR failure_kind = $5)
   AND ($6::timestamptz IS NULL OR failed_at >= $6)
   AND ($7::timestamptz IS NULL OR failed_at < $7)
 ORDER BY failed_at DESC, id
 LIMIT $3 OFFSET $8;

-- name: get_failure
SELECT * FROM job_failures WHERE id = $1;

-- name: mark_retried
UPDATE job_failures
   SET retried_at = $2, retry_job_id = $3
 WHERE id = $1
RETURNING *;

-- name: purge_failures
DELETE FROM job_failures WHERE failed_at < $1;

-- name: purge_runs
-- One bounded batch of finished attempts older than $1 (at most $2 rows), found through the
-- partial index job_runs_finished_at; the caller repeats it until a batch comes back short.
-- SKIP LOCKED lets two workers purge at once without waiting on each other's rows.
DELETE FROM job_runs
 WHERE id IN (SELECT id
                FROM job_runs
               WHERE finished_at < $1
                 AND status <> 'running'
               LIMIT $2
                 FOR UPDATE SKIP LOCKED);
