SELECT name, id, partitions FROM skiff.topics WHERE id = $1
