SELECT producer_id, first_offset, last_offset FROM skiff.aborted_transactions
WHERE topic = $1 AND partition = $2 AND last_offset >= $3 AND first_offset < $4
ORDER BY first_offset
