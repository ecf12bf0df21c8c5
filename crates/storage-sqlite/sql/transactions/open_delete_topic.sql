DELETE FROM open_transactions WHERE topic_key = ?1
