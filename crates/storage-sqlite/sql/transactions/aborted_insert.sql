INSERT INTO aborted_transactions (topic_key, partition, producer_id, first_offset, last_offset) VALUES (?1, ?2, ?3, ?4, ?5)
