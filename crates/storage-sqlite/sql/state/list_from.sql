-- Keys from ?1 on, in order; the caller stops at the first key outside its prefix.
SELECT key, value, version FROM state WHERE key >= ?1 ORDER BY key
