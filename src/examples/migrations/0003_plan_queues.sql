-- Tables of the plans' own queues (E1, E2) in portside.examples.plans. Every job write is an
-- idempotent upsert, so a retried or replayed job changes nothing it already wrote.

-- phase1-tasks: nothing of its own (status lives in the queue, failures in job_failures).

-- weather-ingestion: one row per station and observation time.
CREATE TABLE IF NOT EXISTS example_weather_observations (
    station_id  text          NOT NULL,
    observed_at timestamptz   NOT NULL,
    temp_c      numeric(5,1)  NOT NULL,
    wind_kmh    numeric(5,1)  NOT NULL,
    PRIMARY KEY (station_id, observed_at)
);

-- alert-fanout: who wants alerts of which station (the personalization preferences, read
-- through the cache), and one delivery row per alert and user.
CREATE TABLE IF NOT EXISTS example_alert_preferences (
    user_id        text     PRIMARY KEY,
    station_id     text     NOT NULL,
    min_wind_kmh   numeric(5,1) NOT NULL DEFAULT 60,
    muted          boolean  NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS example_alert_preferences_station ON example_alert_preferences (station_id);

CREATE TABLE IF NOT EXISTS example_alert_deliveries (
    alert_id  text        NOT NULL,
    user_id   text        NOT NULL,
    sent_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, user_id)
);

-- moderation-review: the latest decision per reported item.
CREATE TABLE IF NOT EXISTS example_moderation_decisions (
    item_id    text        PRIMARY KEY,
    decision   text        NOT NULL CHECK (decision IN ('approve', 'reject', 'escalate')),
    reasons    text[]      NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);

-- analytics-ingest and analytics-aggregate: raw events per source and day, daily rollups.
CREATE TABLE IF NOT EXISTS example_analytics_events (
    source    text          NOT NULL,
    event_id  text          NOT NULL,
    day       date          NOT NULL,
    kind      text          NOT NULL,
    value     numeric(12,2) NOT NULL,
    PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS example_analytics_events_day ON example_analytics_events (day);

CREATE TABLE IF NOT EXISTS example_analytics_daily (
    day     date          NOT NULL,
    kind    text          NOT NULL,
    events  integer       NOT NULL,
    total   numeric(16,2) NOT NULL,
    PRIMARY KEY (day, kind)
);
