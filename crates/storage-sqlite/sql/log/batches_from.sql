-- Whole batches holding offsets at or after ?3, in offset order. The caller steps through the
-- rows and stops at its byte budget; `length()` lets it decide before loading a blob.
SELECT length(bytes), bytes
FROM batches
WHERE topic_key = ?1 AND partition = ?2 AND last_offset >= ?3
ORDER BY last_offset
