DELETE FROM producer_states WHERE topic_key = ?1
