INSERT INTO skiff.group_offsets
    (group_id, topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp_ms)
SELECT $1, * FROM unnest(
    $2::text[], $3::integer[], $4::bigint[], $5::integer[], $6::bytea[], $7::bigint[])
ON CONFLICT (group_id, topic, partition) DO UPDATE SET
    committed_offset = excluded.committed_offset,
    leader_epoch = excluded.leader_epoch,
    metadata = excluded.metadata,
    commit_timestamp_ms = excluded.commit_timestamp_ms
