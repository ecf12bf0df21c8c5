UPDATE partitions SET log_start = ?3 WHERE topic_key = ?1 AND partition = ?2
