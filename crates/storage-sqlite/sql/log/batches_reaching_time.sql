-- Batches (not wholly below the log start ?3) holding a timestamp at or after ?4, in offset
-- order; the first record found in them is the answer. The offset index covers max_timestamp,
-- so batches that cannot match are skipped without being read.
SELECT bytes
FROM batches
WHERE topic_key = ?1 AND partition = ?2 AND last_offset >= ?3 AND max_timestamp >= ?4
ORDER BY last_offset
