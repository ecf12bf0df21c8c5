SELECT topic_key, name, id, partitions FROM topics ORDER BY name
