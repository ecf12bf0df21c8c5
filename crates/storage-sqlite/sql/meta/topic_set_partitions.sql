UPDATE topics SET partitions = ?2 WHERE topic_key = ?1
