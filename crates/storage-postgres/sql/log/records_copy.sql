COPY skiff.records (topic, partition, "offset", timestamp_ms, key, value, headers)
FROM STDIN (FORMAT binary)
