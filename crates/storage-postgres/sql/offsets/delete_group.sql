DELETE FROM skiff.group_offsets WHERE group_id = $1
