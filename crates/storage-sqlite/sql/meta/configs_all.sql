SELECT topic_key, key, value FROM topic_configs
