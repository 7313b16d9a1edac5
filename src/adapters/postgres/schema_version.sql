-- Named statements of the migrator (portside.adapters.postgres.migrations): its own record of
-- applied migrations, one row per (source, version). portside's migrations are source
-- 'portside'; an application's are recorded under the name of their MigrationSource.

-- name: create_version_table
CREATE TABLE IF NOT EXISTS portside_schema_version (
    source     text        NOT NULL DEFAULT 'portside',
    version    text        NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, version)
);

-- name: has_source_column
-- False only for a table created before migrations had sources (its key was version alone).
SELECT EXISTS (
    SELECT 1
      FROM pg_attribute
     WHERE attrelid = to_regclass('portside_schema_version')
       AND attname = 'source'
       AND NOT attisdropped
);

-- name: add_source_column
-- Every row of such a table is one of portside's migrations, hence the default.
DO $$
DECLARE
    primary_key text;
BEGIN
    ALTER TABLE portside_schema_version ADD COLUMN source text NOT NULL DEFAULT 'portside';
    SELECT conname INTO primary_key
      FROM pg_constraint
     WHERE conrelid = to_regclass('portside_schema_version') AND contype = 'p';
    EXECUTE format('ALTER TABLE portside_schema_version DROP CONSTRAINT %I', primary_key);
    ALTER TABLE portside_schema_version ADD PRIMARY KEY (source, version);
END
$$;

-- name: applied
SELECT source, version, checksum FROM portside_schema_version;

-- name: record
INSERT INTO portside_schema_version (source, version, name, checksum) VALUES ($1, $2, $3, $4);
