INSERT INTO topics (name, id, partitions) VALUES (?1, ?2, ?3)
RETURNING topic_key
