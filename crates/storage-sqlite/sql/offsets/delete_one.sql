DELETE FROM group_offsets WHERE group_id = ?1 AND topic = ?2 AND partition = ?3
