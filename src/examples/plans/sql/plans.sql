-- Named queries of the plan examples. Tables: the examples' migration 0003_plan_queues.sql.
-- Upserts change a row only when a value differs and return one row per change.

-- name: upsert_observations
INSERT INTO example_weather_observations AS t (station_id, observed_at, temp_c, wind_kmh)
SELECT $1::text, o.observed_at, o.temp_c, o.wind_kmh
  FROM unnest($2::timestamptz[], $3::numeric[], $4::numeric[]) AS o(observed_at, temp_c, wind_kmh)
ON CONFLICT (station_id, observed_at) DO UPDATE
   SET temp_c = excluded.temp_c, wind_kmh = excluded.wind_kmh
 WHERE (t.temp_c, t.wind_kmh) IS DISTINCT FROM (excluded.temp_c, excluded.wind_kmh)
RETURNING 1;

-- name: station_subscribers
SELECT user_id FROM example_alert_preferences WHERE station_id = $1 ORDER BY user_id;

-- name: get_preferences
SELECT user_id, station_id, min_wind_kmh, muted FROM example_alert_preferences
 WHERE user_id = $1;

-- name: put_preferences
INSERT INTO example_alert_preferences AS t (user_id, station_id, min_wind_kmh, muted)
VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id) DO UPDATE
   SET station_id = excluded.station_id, min_wind_kmh = excluded.min_wind_kmh,
       muted = excluded.muted
 WHERE (t.station_id, t.min_wind_kmh, t.muted)
       IS DISTINCT FROM (excluded.station_id, excluded.min_wind_kmh, excluded.muted)
RETURNING 1;

-- name: record_deliveries
INSERT INTO example_alert_deliveries (alert_id, user_id)
SELECT $1::text, u FROM unnest($2::text[]) AS u
ON CONFLICT (alert_id, user_id) DO NOTHING
RETURNING user_id;

-- name: upsert_decision
INSERT INTO example_moderation_decisions AS t (item_id, decision, reasons)
VALUES ($1, $2, $3)
ON CONFLICT (item_id) DO UPDATE
   SET decision = excluded.decision, reasons = excluded.reasons, decided_at = now()
 WHERE (t.decision, t.reasons) IS DISTINCT FROM (excluded.decision, excluded.reasons)
RETURNING 1;

-- name: upsert_events
INSERT INTO example_analytics_events AS t (source, event_id, day, kind, value)
SELECT $1::text, e.event_id, $2::date, e.kind, e.value
  FROM unnest($3::text[], $4::text[], $5::numeric[]) AS e(event_id, kind, value)
ON CONFLICT (source, event_id) DO UPDATE
   SET day = excluded.day, kind = excluded.kind, value = excluded.value
 WHERE (t.day, t.kind, t.value) IS DISTINCT FROM (excluded.day, excluded.kind, excluded.value)
RETURNING 1;

-- name: aggregate_day
INSERT INTO example_analytics_daily AS t (day, kind, events, total)
SELECT $1::date, kind, count(*)::integer, sum(value)
  FROM example_analytics_events
 WHERE day = $1
 GROUP BY kind
ON CONFLICT (day, kind) DO UPDATE
   SET events = excluded.events, total = excluded.total
 WHERE (t.events, t.total) IS DISTINCT FROM (excluded.events, excluded.total)
RETURNING 1;

-- name: daily_rollup
SELECT kind, events, total FROM example_analytics_daily WHERE day = $1 ORDER BY kind;
