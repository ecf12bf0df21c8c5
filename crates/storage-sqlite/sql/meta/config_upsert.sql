INSERT INTO topic_configs (topic_key, key, value) VALUES (?1, ?2, ?3)
ON CONFLICT (topic_key, key) DO UPDATE SET value = excluded.value
