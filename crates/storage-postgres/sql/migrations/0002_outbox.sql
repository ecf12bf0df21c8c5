-- Version 2: the outbox. An application enqueues a record inside its own transaction:
--
--   BEGIN;
--   UPDATE orders SET status = 'paid' WHERE id = 42;
--   SELECT skiff.produce('order-events', 0, 'order-42', '{"status":"paid"}');
--   COMMIT;
--
-- The record becomes visible to consumers exactly when that transaction commits and vanishes if
-- it rolls back, so no separate outbox table or relay is needed. Like a broker's append, it takes
-- the partition's row lock (until the caller's transaction ends: keep those transactions short)
-- and advances the high watermark, so offsets stay unique and gap-free alongside the brokers.
-- Returns the record's offset. `headers` keeps repeated keys in order:
--   SELECT skiff.produce('t', 0, NULL, 'v', ARRAY[ROW('h', '1')::skiff.header, ROW('h', '2')]);
CREATE FUNCTION skiff.produce(
    topic     text,
    partition integer,
    key       bytea,
    value     bytea,
    headers   skiff.header[] DEFAULT '{}'
) RETURNS bigint
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    assigned bigint;
    now_ms   bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    -- The batch's encoded size, near enough for fetch budgets (the broker re-checks exactly).
    size     integer := 72 + COALESCE(octet_length(produce.key), 0)
                       + COALESCE(octet_length(produce.value), 0)
                       + COALESCE((SELECT sum(octet_length(h.key) + COALESCE(octet_length(h.value), 0) + 4)
                                   FROM unnest(produce.headers) AS h), 0);
BEGIN
    UPDATE skiff.partitions p SET high = p.high + 1
    WHERE p.topic = produce.topic AND p.partition = produce.partition
    RETURNING p.high - 1 INTO assigned;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'skiff: partition % of topic % does not exist', produce.partition, produce.topic
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO skiff.records (topic, partition, "offset", timestamp_ms, key, value, headers)
    VALUES (produce.topic, produce.partition, assigned, now_ms, produce.key, produce.value,
            COALESCE(produce.headers, '{}'));
    -- A batch of one record from no producer (producer id, epoch and sequence -1), CreateTime.
    INSERT INTO skiff.batches
        (topic, partition, base_offset, last_offset, attributes, producer_id, producer_epoch,
         base_sequence, leader_epoch, base_timestamp, max_timestamp, record_count, size_bytes)
    VALUES (produce.topic, produce.partition, assigned, assigned, 0, -1, -1, -1, -1, now_ms,
            now_ms, 1, size);
    RETURN assigned;
END
$$;

COMMENT ON FUNCTION skiff.produce(text, integer, bytea, bytea, skiff.header[]) IS
    'Enqueue a Kafka record in the caller''s transaction (outbox); returns its offset';
