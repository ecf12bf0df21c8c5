INSERT INTO producer_states (topic_key, partition, producer_id, entry) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (topic_key, partition, producer_id) DO UPDATE SET entry = excluded.entry
