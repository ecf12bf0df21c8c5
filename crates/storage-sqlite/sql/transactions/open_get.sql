SELECT first_offset FROM open_transactions WHERE topic_key = ?1 AND partition = ?2 AND producer_id = ?3
