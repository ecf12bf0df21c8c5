SELECT DISTINCT group_id FROM skiff.group_offsets ORDER BY group_id
