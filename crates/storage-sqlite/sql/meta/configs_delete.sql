DELETE FROM topic_configs WHERE topic_key = ?1
