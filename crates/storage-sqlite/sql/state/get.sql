SELECT value, version FROM state WHERE key = ?1
