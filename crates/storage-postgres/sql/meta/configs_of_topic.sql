SELECT key, value FROM skiff.topic_configs WHERE topic = $1 ORDER BY key
