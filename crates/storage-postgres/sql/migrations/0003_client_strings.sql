-- Version 3: client strings are stored whole. Kafka strings may hold U+0000, which `text` cannot.
--
-- * Offset commit metadata is free-form client data: it becomes `bytea` (its UTF-8 bytes), kept
--   byte for byte. Read it as text with convert_from(metadata, 'UTF8').
-- * Identifiers and other client strings stay `text`, so rows stay readable and queryable
--   (`WHERE group_id = 'billing'`), escaped as crates/storage-postgres/src/text.rs describes:
--   U+0000 is stored as U+0001 U+0001 and U+0001 as U+0001 U+0002; nothing else changes. Only
--   values already holding U+0001 (which no real identifier has) are rewritten here: committed
--   offsets' group ids, state keys (group and transactional ids), topic config keys and values,
--   and record header keys (this scans skiff.records once).
-- * skiff.produce (the outbox) stores header keys in the same form.

ALTER TABLE skiff.group_offsets
    ALTER COLUMN metadata TYPE bytea USING convert_to(metadata, 'UTF8');

UPDATE skiff.group_offsets SET group_id = replace(group_id, E'\x01', E'\x01\x02')
WHERE strpos(group_id, E'\x01') > 0;

UPDATE skiff.state SET key = replace(key, E'\x01', E'\x01\x02')
WHERE strpos(key, E'\x01') > 0;

UPDATE skiff.topic_configs
SET key = replace(key, E'\x01', E'\x01\x02'), value = replace(value, E'\x01', E'\x01\x02')
WHERE strpos(key, E'\x01') > 0 OR strpos(value, E'\x01') > 0;

UPDATE skiff.records r
SET headers = ARRAY(
    SELECT ROW(replace(h.key, E'\x01', E'\x01\x02'), h.value)::skiff.header
    FROM unnest(r.headers) WITH ORDINALITY AS h(key, value, n)
    ORDER BY h.n)
WHERE r.headers <> '{}'
  AND EXISTS (SELECT 1 FROM unnest(r.headers) AS h WHERE strpos(h.key, E'\x01') > 0);

CREATE OR REPLACE FUNCTION skiff.produce(
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
    -- Header keys in the stored form (U+0001 escaped), in order.
    stored   skiff.header[] := ARRAY(
        SELECT ROW(replace(h.key, E'\x01', E'\x01\x02'), h.value)::skiff.header
        FROM unnest(COALESCE(produce.headers, '{}')) WITH ORDINALITY AS h(key, value, n)
        ORDER BY h.n);
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
    VALUES (produce.topic, produce.partition, assigned, now_ms, produce.key, produce.value, stored);
    -- A batch of one record from no producer (producer id, epoch and sequence -1), CreateTime.
    INSERT INTO skiff.batches
        (topic, partition, base_offset, last_offset, attributes, producer_id, producer_epoch,
         base_sequence, leader_epoch, base_timestamp, max_timestamp, record_count, size_bytes)
    VALUES (produce.topic, produce.partition, assigned, assigned, 0, -1, -1, -1, -1, now_ms,
            now_ms, 1, size);
    RETURN assigned;
END
$$;
