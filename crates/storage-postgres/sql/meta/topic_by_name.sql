SELECT name, id, partitions FROM skiff.topics WHERE name = $1
