INSERT INTO skiff.partitions (topic, partition)
SELECT $1, generate_series($2::integer, $3::integer - 1)
