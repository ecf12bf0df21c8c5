-- One read of a partition: whole batches holding offsets from $3 below the high watermark $4,
-- the first always and later ones while their stored sizes add up to at most $5 bytes (at most
-- $6 batches), each with its records. The batch scan follows the primary key and stops at the
-- limit, so a long backlog is never scanned; records come by primary-key range per batch.
-- The records join is LATERAL (and fenced) so that range is always the index condition: as a
-- plain join, a fresh table's missing statistics (rows=1 before autovacuum analyzes it) let
-- the planner scan every record of the partition once per batch: 7-11 s for one fetch of 1000
-- batches at 7,000 records, 13 ms this way (soak bug 6).
-- Control batches keep their one record in the batch row, so they join no record row.
WITH chosen AS (
    SELECT base_offset, last_offset, attributes, producer_id, producer_epoch, base_sequence,
           leader_epoch, base_timestamp, max_timestamp, control_key, control_value, size_bytes,
           sum(size_bytes) OVER (ORDER BY last_offset) AS running
    FROM skiff.batches
    WHERE topic = $1 AND partition = $2 AND last_offset >= $3 AND base_offset < $4
    ORDER BY last_offset
    LIMIT $6
)
SELECT c.base_offset, c.last_offset, c.attributes, c.producer_id, c.producer_epoch,
       c.base_sequence, c.leader_epoch, c.base_timestamp, c.max_timestamp, c.control_key,
       c.control_value, r."offset", r.timestamp_ms, r.key, r.value, r.headers
FROM chosen c
LEFT JOIN LATERAL (
    SELECT r."offset", r.timestamp_ms, r.key, r.value, r.headers
    FROM skiff.records r
    WHERE r.topic = $1 AND r.partition = $2 AND r."offset" BETWEEN c.base_offset AND c.last_offset
    OFFSET 0 -- keeps the subquery from being flattened back into a plain join
) r ON true
WHERE c.running <= $5 OR c.running = c.size_bytes
ORDER BY c.last_offset, r."offset"
