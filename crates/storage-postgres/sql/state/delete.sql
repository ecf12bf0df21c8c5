DELETE FROM skiff.state WHERE key = $1 AND version = $2 RETURNING version
