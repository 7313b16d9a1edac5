-- Tables of the example jobs in portside.examples.ingestion (A7). Every write is an idempotent
-- upsert that touches a row only when its values change, so replaying a job changes nothing.
-- IF NOT EXISTS: databases migrated before the examples left the core already have these
-- tables (from portside's own 0011_example_datasets, the same statements).

CREATE TABLE IF NOT EXISTS example_ingested_records (
    organization_id text          NOT NULL,
    integration_id  text          NOT NULL,
    day             date          NOT NULL,
    record_id       text          NOT NULL,
    category        text          NOT NULL,
    amount          numeric(14,2) NOT NULL,
    PRIMARY KEY (organization_id, integration_id, day, record_id)
);

CREATE TABLE IF NOT EXISTS example_daily_aggregates (
    organization_id text          NOT NULL,
    day             date          NOT NULL,
    records         integer       NOT NULL,
    total           numeric(16,2) NOT NULL,
    PRIMARY KEY (organization_id, day)
);

CREATE TABLE IF NOT EXISTS example_energy_wholesale_prices (
    region         text          NOT NULL,
    interval_start timestamptz   NOT NULL,
    price_mwh      numeric(12,2) NOT NULL,
    demand_mw      numeric(12,1) NOT NULL,
    PRIMARY KEY (region, interval_start)
);

CREATE TABLE IF NOT EXISTS example_energy_retail_plans (
    plan_id            text          PRIMARY KEY,
    brand              text          NOT NULL,
    fuel_type          text          NOT NULL,
    effective_from     date          NOT NULL,
    daily_supply_cents numeric(10,2) NOT NULL,
    usage_cents_kwh    numeric(10,2) NOT NULL
);

CREATE TABLE IF NOT EXISTS example_housing_abs (
    series_id text          NOT NULL,
    period    date          NOT NULL,
    value     numeric(14,1) NOT NULL,
    PRIMARY KEY (series_id, period)
);
