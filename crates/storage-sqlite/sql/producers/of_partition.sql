SELECT s.producer_id, s.entry,
       (SELECT o.first_offset FROM open_transactions o
        WHERE o.topic_key = s.topic_key AND o.partition = s.partition
          AND o.producer_id = s.producer_id)
FROM producer_states s
WHERE s.topic_key = ?1 AND s.partition = ?2
ORDER BY s.producer_id
