SELECT p.topic_key, p.log_start, p.high
FROM topics t
JOIN partitions p ON p.topic_key = t.topic_key AND p.partition = ?2
WHERE t.name = ?1
