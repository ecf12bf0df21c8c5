-- The append's serialisation point: the partition row stays locked until the append commits.
SELECT log_start, high FROM skiff.partitions WHERE topic = $1 AND partition = $2 FOR UPDATE
