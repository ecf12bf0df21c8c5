DELETE FROM group_offsets WHERE group_id = ?1
