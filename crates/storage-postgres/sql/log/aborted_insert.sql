INSERT INTO skiff.aborted_transactions (topic, partition, producer_id, first_offset, last_offset)
SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::bigint[])
