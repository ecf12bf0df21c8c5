INSERT INTO partitions (topic_key, partition, log_start, high) VALUES (?1, ?2, 0, 0)
