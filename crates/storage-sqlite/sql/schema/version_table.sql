-- The migrations applied to this file, one row each. Created before anything else so that the
-- version can be read inside the same transaction that applies what is missing.
CREATE TABLE IF NOT EXISTS schema_version (
    version       INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    applied_at_ms INTEGER NOT NULL
);
