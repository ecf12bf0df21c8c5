UPDATE skiff.partitions SET high = $3 WHERE topic = $1 AND partition = $2
