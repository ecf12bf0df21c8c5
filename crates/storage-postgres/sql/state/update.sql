UPDATE skiff.state SET value = $2, version = nextval('skiff.state_versions')
WHERE key = $1 AND version = $3
RETURNING version
