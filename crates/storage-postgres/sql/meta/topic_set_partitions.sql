UPDATE skiff.topics SET partitions = $2 WHERE name = $1
