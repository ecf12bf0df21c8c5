-- Run first, inside the migration transaction, after taking the migration lock: the schema and
-- the table recording which migrations were applied.
CREATE SCHEMA IF NOT EXISTS skiff;
CREATE TABLE IF NOT EXISTS skiff.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
