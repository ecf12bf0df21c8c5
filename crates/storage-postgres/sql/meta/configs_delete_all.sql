DELETE FROM skiff.topic_configs WHERE topic = $1
