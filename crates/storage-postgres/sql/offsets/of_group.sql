SELECT topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp_ms
FROM skiff.group_offsets
WHERE group_id = $1
ORDER BY topic, partition
