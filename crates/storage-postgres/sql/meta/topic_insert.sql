INSERT INTO skiff.topics (name, id, partitions) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING
RETURNING name
