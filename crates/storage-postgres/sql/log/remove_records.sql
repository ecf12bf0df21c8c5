-- Compaction: removes the records at offsets $3 (the caller checked they are below the last
-- stable offset, which only ever grows). Each removed record finds its batch by the primary key
-- (the first batch ending at or after it); a batch left without records goes, the others count
-- fewer records and shrink their stored size in proportion (an estimate: retention.bytes works
-- from it, and the re-encoded size depends on the codec). Returns how many records went.
WITH removed AS (
    DELETE FROM skiff.records
    WHERE topic = $1 AND partition = $2 AND "offset" = ANY($3)
    RETURNING "offset"
), per_batch AS (
    SELECT b.last_offset, b.record_count, count(*) AS gone
    FROM removed r
    CROSS JOIN LATERAL (
        SELECT last_offset, record_count FROM skiff.batches
        WHERE topic = $1 AND partition = $2 AND last_offset >= r."offset"
        ORDER BY last_offset
        LIMIT 1
    ) b
    GROUP BY b.last_offset, b.record_count
), emptied AS (
    DELETE FROM skiff.batches b
    USING per_batch p
    WHERE b.topic = $1 AND b.partition = $2 AND b.last_offset = p.last_offset
      AND p.record_count <= p.gone
), shrunk AS (
    UPDATE skiff.batches b
    SET record_count = b.record_count - p.gone,
        size_bytes = greatest(61, b.size_bytes - ((b.size_bytes - 61) * p.gone / b.record_count)::integer)
    FROM per_batch p
    WHERE b.topic = $1 AND b.partition = $2 AND b.last_offset = p.last_offset
      AND p.record_count > p.gone
)
SELECT count(*) FROM removed
