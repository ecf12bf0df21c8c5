SELECT topic, key, value FROM skiff.topic_configs
