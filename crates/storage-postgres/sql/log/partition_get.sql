-- Watermarks (the last stable offset is the oldest open transaction's first offset) and the
-- topic's compression.type, for fetch.
SELECT p.log_start, p.high,
       (SELECT MIN(o.first_offset) FROM skiff.open_transactions o
        WHERE o.topic = p.topic AND o.partition = p.partition),
       (SELECT c.value FROM skiff.topic_configs c
        WHERE c.topic = p.topic AND c.key = 'compression.type')
FROM skiff.partitions p
WHERE p.topic = $1 AND p.partition = $2
