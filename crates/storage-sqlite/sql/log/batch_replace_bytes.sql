-- Compaction rewrote a batch without some of its records; offsets and timestamps stay.
UPDATE batches SET bytes = ?2 WHERE rowid = ?1
