DELETE FROM topic_configs WHERE topic_key = ?1 AND key = ?2
