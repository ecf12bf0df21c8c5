-- DeleteRecords: the log start moves to $3. Records go with their batch, so a batch cut by the
-- new log start keeps all its records (fetch serves whole batches).
WITH cut AS (
    SELECT COALESCE(MIN(base_offset), $3) AS first_kept FROM skiff.batches
    WHERE topic = $1 AND partition = $2 AND last_offset >= $3
), records AS (
    DELETE FROM skiff.records
    WHERE topic = $1 AND partition = $2 AND "offset" < (SELECT first_kept FROM cut)
), batches AS (
    DELETE FROM skiff.batches WHERE topic = $1 AND partition = $2 AND last_offset < $3
), aborted AS (
    DELETE FROM skiff.aborted_transactions
    WHERE topic = $1 AND partition = $2 AND last_offset < $3
)
UPDATE skiff.partitions SET log_start = $3 WHERE topic = $1 AND partition = $2
