-- Everything of a topic, in one statement; partitions and configs go by ON DELETE CASCADE.
WITH records AS (
    DELETE FROM skiff.records WHERE topic = $1
), batches AS (
    DELETE FROM skiff.batches WHERE topic = $1
), producers AS (
    DELETE FROM skiff.producer_states WHERE topic = $1
), open AS (
    DELETE FROM skiff.open_transactions WHERE topic = $1
), aborted AS (
    DELETE FROM skiff.aborted_transactions WHERE topic = $1
), offsets AS (
    DELETE FROM skiff.group_offsets WHERE topic = $1
)
DELETE FROM skiff.topics WHERE name = $1 RETURNING name
