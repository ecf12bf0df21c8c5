INSERT INTO skiff.state (key, value, version)
VALUES ($1, $2, nextval('skiff.state_versions'))
ON CONFLICT (key) DO NOTHING
RETURNING version
