DELETE FROM aborted_transactions WHERE topic_key = ?1
