UPDATE partitions SET high = ?3 WHERE topic_key = ?1 AND partition = ?2
