SELECT s.producer_id, s.entry, o.first_offset
FROM skiff.producer_states s
LEFT JOIN skiff.open_transactions o
    ON o.topic = s.topic AND o.partition = s.partition AND o.producer_id = s.producer_id
WHERE s.topic = $1 AND s.partition = $2
ORDER BY s.producer_id
