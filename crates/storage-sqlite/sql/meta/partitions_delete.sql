DELETE FROM partitions WHERE topic_key = ?1
