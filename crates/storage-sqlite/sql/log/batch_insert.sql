INSERT INTO batches (topic_key, partition, base_offset, last_offset, max_timestamp, bytes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
