SELECT producer_id, first_offset FROM skiff.open_transactions
WHERE topic = $1 AND partition = $2 AND producer_id = ANY($3)
