-- The record with the largest timestamp at or after log start $3, the earliest on ties. Records
-- are searched only in the few batches whose headers say they hold the largest timestamps (a
-- well-formed batch holds a record at its header's max; the batch cut by the log start may not,
-- which is why several candidates are searched), never the whole partition.
SELECT r."offset", r.timestamp_ms
FROM (
    SELECT base_offset, last_offset FROM skiff.batches
    WHERE topic = $1 AND partition = $2 AND last_offset >= $3 AND NOT control
    ORDER BY max_timestamp DESC, last_offset
    LIMIT 8
) b
CROSS JOIN LATERAL (
    SELECT "offset", timestamp_ms FROM skiff.records
    WHERE topic = $1 AND partition = $2
      AND "offset" BETWEEN GREATEST(b.base_offset, $3) AND b.last_offset
    ORDER BY timestamp_ms DESC, "offset"
    LIMIT 1
) r
ORDER BY r.timestamp_ms DESC, r."offset"
LIMIT 1
