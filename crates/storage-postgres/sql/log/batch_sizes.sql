-- Every batch at or after log start $3, with the size it had when produced, in offset order:
-- what retention.bytes is enforced from.
SELECT base_offset, size_bytes
FROM skiff.batches
WHERE topic = $1 AND partition = $2 AND last_offset >= $3
ORDER BY last_offset
