-- The record with the largest timestamp at or after log start $3, the earliest on ties.
SELECT "offset", timestamp_ms FROM skiff.records
WHERE topic = $1 AND partition = $2 AND "offset" >= $3
ORDER BY timestamp_ms DESC, "offset"
LIMIT 1
