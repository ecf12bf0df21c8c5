SELECT value, version FROM skiff.state WHERE key = $1
