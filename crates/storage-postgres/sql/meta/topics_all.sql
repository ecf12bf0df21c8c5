SELECT name, id, partitions FROM skiff.topics ORDER BY name
