SELECT producer_id, entry FROM skiff.producer_states
WHERE topic = $1 AND partition = $2 AND producer_id = ANY($3)
