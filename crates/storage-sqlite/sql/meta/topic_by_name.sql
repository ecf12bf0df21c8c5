SELECT topic_key, name, id, partitions FROM topics WHERE name = ?1
