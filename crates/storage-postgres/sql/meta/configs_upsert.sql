INSERT INTO skiff.topic_configs (topic, key, value)
SELECT $1, * FROM unnest($2::text[], $3::text[])
ON CONFLICT (topic, key) DO UPDATE SET value = excluded.value
