-- The first record at or after log start $3 with a timestamp at or after $4: only batches whose
-- header says they reach that time are searched, in offset order.
SELECT r."offset", r.timestamp_ms
FROM skiff.batches b
CROSS JOIN LATERAL (
    SELECT "offset", timestamp_ms FROM skiff.records
    WHERE topic = b.topic AND partition = b.partition
      AND "offset" BETWEEN GREATEST(b.base_offset, $3) AND b.last_offset
      AND timestamp_ms >= $4
    ORDER BY "offset"
    LIMIT 1
) r
WHERE b.topic = $1 AND b.partition = $2 AND b.last_offset >= $3 AND b.max_timestamp >= $4
  AND NOT b.control
ORDER BY b.last_offset
LIMIT 1
