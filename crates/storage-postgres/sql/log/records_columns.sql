-- Prepared (never run) for the column types that the binary COPY writes.
SELECT topic, partition, "offset", timestamp_ms, key, value, headers FROM skiff.records LIMIT 0
