INSERT INTO skiff.producer_states (topic, partition, producer_id, entry)
SELECT $1, $2, * FROM unnest($3::bigint[], $4::bytea[])
ON CONFLICT (topic, partition, producer_id) DO UPDATE SET entry = excluded.entry
