SELECT p.topic_key, p.log_start, p.high,
       (SELECT MIN(o.first_offset) FROM open_transactions o
        WHERE o.topic_key = p.topic_key AND o.partition = p.partition)
FROM topics t
JOIN partitions p ON p.topic_key = t.topic_key AND p.partition = ?2
WHERE t.name = ?1
