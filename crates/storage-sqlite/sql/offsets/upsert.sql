INSERT INTO group_offsets
    (group_id, topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (group_id, topic, partition) DO UPDATE SET
    committed_offset = excluded.committed_offset,
    leader_epoch = excluded.leader_epoch,
    metadata = excluded.metadata,
    commit_timestamp = excluded.commit_timestamp
