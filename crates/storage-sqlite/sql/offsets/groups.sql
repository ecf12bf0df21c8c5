SELECT DISTINCT group_id FROM group_offsets ORDER BY group_id
