-- Migration 4: the outbox function is no back door around schema validation.
--
-- The broker validates every record of a topic whose subject `<topic>-value` or `<topic>-key`
-- has a live version in the Schema Registry (kept in skiff.state under registry/subjects/).
-- skiff.produce cannot run the broker's Avro, JSON Schema and Protobuf decoders, so for such a
-- topic it refuses with SQLSTATE 23514 (check_violation) and a message saying why, unless the
-- topic turned validation off (skiff.schema.validation = false). The check is its own function
-- so later changes redefine only it; skiff.produce is restated here with one line added.

CREATE OR REPLACE FUNCTION skiff.schema_guard(topic text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    governed text;
BEGIN
    IF EXISTS (SELECT 1 FROM skiff.topic_configs c
               WHERE c.topic = schema_guard.topic AND c.key = 'skiff.schema.validation'
                 AND c.value = 'false') THEN
        RETURN;
    END IF;
    SELECT substr(s.key, length('registry/subjects/') + 1) INTO governed
    FROM skiff.state s
    WHERE s.key IN ('registry/subjects/' || schema_guard.topic || '-value',
                    'registry/subjects/' || schema_guard.topic || '-key')
      AND EXISTS (SELECT 1
                  FROM jsonb_array_elements(convert_from(s.value, 'UTF8')::jsonb -> 'versions') v
                  WHERE NOT COALESCE((v ->> 'deleted')::boolean, false))
    ORDER BY s.key
    LIMIT 1;
    IF governed IS NOT NULL THEN
        RAISE EXCEPTION 'skiff: topic % has a schema (subject %), and skiff.produce cannot validate records against it', schema_guard.topic, governed
            USING ERRCODE = 'check_violation',
                  HINT = 'produce through a Kafka client (the broker validates), or set the topic config skiff.schema.validation=false';
    END IF;
END
$$;

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
    PERFORM skiff.schema_guard(produce.topic);
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
