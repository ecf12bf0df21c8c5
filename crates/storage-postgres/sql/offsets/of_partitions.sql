SELECT topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp_ms
FROM skiff.group_offsets
WHERE group_id = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::integer[]))
ORDER BY topic, partition
