SELECT base_offset, length(bytes)
FROM batches
WHERE topic_key = ?1 AND partition = ?2 AND last_offset >= ?3
ORDER BY last_offset
