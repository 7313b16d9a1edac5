-- Named queries of SqlExampleStore. Tables: the examples' migration 0001_example_datasets.sql.
-- Upserts change a row only when a value differs and return one row per change.

-- name: upsert_records
INSERT INTO example_ingested_records AS t
       (organization_id, integration_id, day, record_id, category, amount)
SELECT $1::text, $2::text, $3::date, r.record_id, r.category, r.amount
  FROM unnest($4::text[], $5::text[], $6::numeric[]) AS r(record_id, category, amount)
ON CONFLICT (organization_id, integration_id, day, record_id) DO UPDATE
   SET category = excluded.category, amount = excluded.amount
 WHERE (t.category, t.amount) IS DISTINCT FROM (excluded.category, excluded.amount)
RETURNING 1;

-- name: delete_missing_records
DELETE FROM example_ingested_records
 WHERE organization_id = $1 AND integration_id = $2 AND day = $3
   AND NOT (record_id = ANY($4::text[]))
RETURNING 1;

-- name: upsert_aggregate
INSERT INTO example_daily_aggregates AS t (organization_id, day, records, total)
SELECT $1::text, $2::date, count(*)::integer, coalesce(sum(amount), 0)
  FROM example_ingested_records
 WHERE organization_id = $1 AND day = $2
ON CONFLICT (organization_id, day) DO UPDATE
   SET records = excluded.records, total = excluded.total
 WHERE (t.records, t.total) IS DISTINCT FROM (excluded.records, excluded.total)
RETURNING 1;

-- name: get_aggregate
SELECT records, total FROM example_daily_aggregates WHERE organization_id = $1 AND day = $2;

-- name: upsert_wholesale
INSERT INTO example_energy_wholesale_prices AS t (region, interval_start, price_mwh, demand_mw)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::numeric[], $4::numeric[])
ON CONFLICT (region, interval_start) DO UPDATE
   SET price_mwh = excluded.price_mwh, demand_mw = excluded.demand_mw
 WHERE (t.price_mwh, t.demand_mw) IS DISTINCT FROM (excluded.price_mwh, excluded.demand_mw)
RETURNING 1;

-- name: upsert_retail_plans
INSERT INTO example_energy_retail_plans AS t
       (plan_id, brand, fuel_type, effective_from, daily_supply_cents, usage_cents_kwh)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::numeric[],
                     $6::numeric[])
ON CONFLICT (plan_id) DO UPDATE
   SET brand = excluded.brand, fuel_type = excluded.fuel_type,
       effective_from = excluded.effective_from,
       daily_supply_cents = excluded.daily_supply_cents,
       usage_cents_kwh = excluded.usage_cents_kwh
 WHERE (t.brand, t.fuel_type, t.effective_from, t.daily_supply_cents, t.usage_cents_kwh)
       IS DISTINCT FROM
       (excluded.brand, excluded.fuel_type, excluded.effective_from,
        excluded.daily_supply_cents, excluded.usage_cents_kwh)
RETURNING 1;

-- name: upsert_housing
INSERT INTO example_housing_abs AS t (series_id, period, value)
SELECT * FROM unnest($1::text[], $2::date[], $3::numeric[])
ON CONFLICT (series_id, period) DO UPDATE
   SET value = excluded.value
 WHERE t.value IS DISTINCT FROM excluded.value
RETURNING 1;
