-- Compaction removed every record of a batch.
DELETE FROM batches WHERE rowid = ?1
