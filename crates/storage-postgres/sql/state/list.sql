-- Keys with a prefix, in key order; `key >= $1` lets the primary key find the range.
SELECT key, value, version FROM skiff.state
WHERE key >= $1 AND starts_with(key, $1)
ORDER BY key
