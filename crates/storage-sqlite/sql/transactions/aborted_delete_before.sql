DELETE FROM aborted_transactions WHERE topic_key = ?1 AND partition = ?2 AND last_offset < ?3
