-- Batches (not wholly below the log start ?3) by largest timestamp, earliest first on ties, as
-- row ids: the sort runs over the offset index alone (sorting `bytes` would read every batch);
-- the caller then loads only the first few with batch_bytes.sql.
SELECT max_timestamp, rowid
FROM batches
WHERE topic_key = ?1 AND partition = ?2 AND last_offset >= ?3
ORDER BY max_timestamp DESC, last_offset
