DELETE FROM batches WHERE topic_key = ?1
