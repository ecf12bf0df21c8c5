DELETE FROM group_offsets WHERE topic = ?1
