DELETE FROM skiff.topic_configs WHERE topic = $1 AND key = ANY($2)
