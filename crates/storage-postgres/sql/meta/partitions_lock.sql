-- Taken by delete_topic first: appends in flight commit before the rows are deleted, and none
-- starts until the topic is gone.
SELECT partition FROM skiff.partitions WHERE topic = $1 ORDER BY partition FOR UPDATE
