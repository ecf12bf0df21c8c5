INSERT INTO open_transactions (topic_key, partition, producer_id, first_offset) VALUES (?1, ?2, ?3, ?4)
