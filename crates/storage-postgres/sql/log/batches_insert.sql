INSERT INTO skiff.batches
    (topic, partition, base_offset, last_offset, attributes, producer_id, producer_epoch,
     base_sequence, leader_epoch, base_timestamp, max_timestamp, record_count, size_bytes,
     control_key, control_value)
SELECT $1, $2, * FROM unnest(
    $3::bigint[], $4::bigint[], $5::smallint[], $6::bigint[], $7::smallint[], $8::integer[],
    $9::integer[], $10::bigint[], $11::bigint[], $12::integer[], $13::integer[], $14::bytea[],
    $15::bytea[])
