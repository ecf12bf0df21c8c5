SELECT key, value FROM topic_configs WHERE topic_key = ?1 ORDER BY key
