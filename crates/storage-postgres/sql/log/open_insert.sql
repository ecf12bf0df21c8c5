INSERT INTO skiff.open_transactions (topic, partition, producer_id, first_offset)
SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[])
