-- Batches overlapping offsets ?3..=?4 (compaction looks for the batches holding the records it
-- removes). No blob is read: the caller loads only the batches it must rewrite.
SELECT rowid, base_offset, last_offset
FROM batches
WHERE topic_key = ?1 AND partition = ?2 AND last_offset >= ?3 AND base_offset <= ?4
ORDER BY last_offset
