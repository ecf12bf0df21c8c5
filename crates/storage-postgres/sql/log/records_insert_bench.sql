-- Only in the `bench-insert` build: the per-row alternative to records_copy.sql that
-- bench/postgres_copy_vs_insert.sh measures COPY against.
INSERT INTO skiff.records (topic, partition, "offset", timestamp_ms, key, value, headers)
VALUES ($1, $2, $3, $4, $5, $6, $7)
