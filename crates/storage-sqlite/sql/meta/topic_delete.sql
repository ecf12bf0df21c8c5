DELETE FROM topics WHERE topic_key = ?1
