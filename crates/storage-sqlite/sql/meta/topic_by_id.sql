SELECT topic_key, name, id, partitions FROM topics WHERE id = ?1
