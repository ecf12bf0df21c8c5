-- Version 1: topics, partition logs as rows, producers, transactions, compare-and-set state and
-- committed offsets. Everything lives in the schema `skiff`; docs/storage/postgres.md describes it.

-- A topic. `id` is its Kafka topic id. Names sort bytewise (COLLATE "C"), as clients expect.
CREATE TABLE skiff.topics (
    name       text COLLATE "C" PRIMARY KEY,
    id         uuid        NOT NULL UNIQUE,
    partitions integer     NOT NULL CHECK (partitions > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Config overrides of a topic; broker defaults are not stored.
CREATE TABLE skiff.topic_configs (
    topic text COLLATE "C" NOT NULL REFERENCES skiff.topics (name) ON DELETE CASCADE,
    key   text COLLATE "C" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (topic, key)
);

-- One row per partition: its watermarks. An append locks this row (SELECT ... FOR UPDATE) for
-- the length of its transaction: that is what gives concurrent brokers gap-free offsets.
CREATE TABLE skiff.partitions (
    topic     text COLLATE "C" NOT NULL REFERENCES skiff.topics (name) ON DELETE CASCADE,
    partition integer NOT NULL,
    log_start bigint  NOT NULL DEFAULT 0,
    high      bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition)
);

-- A record header. Kafka allows repeated keys, so headers are an ordered array of these.
CREATE TYPE skiff.header AS (key text, value bytea);

-- One row per record batch: what Fetch needs to rebuild the batch around its records (producer
-- fields, attributes, timestamps) and the size it had, to budget fetches without reading records.
-- A control batch (transaction marker) keeps its one record here (`control_key`, `control_value`)
-- rather than in `records`, so `records` holds only what applications produced.
CREATE TABLE skiff.batches (
    topic          text COLLATE "C" NOT NULL,
    partition      integer  NOT NULL,
    base_offset    bigint   NOT NULL,
    last_offset    bigint   NOT NULL,
    attributes     smallint NOT NULL,
    producer_id    bigint   NOT NULL,
    producer_epoch smallint NOT NULL,
    base_sequence  integer  NOT NULL,
    leader_epoch   integer  NOT NULL,
    base_timestamp bigint   NOT NULL,
    max_timestamp  bigint   NOT NULL,
    record_count   integer  NOT NULL,
    size_bytes     integer  NOT NULL,
    control_key    bytea,
    control_value  bytea,
    control        boolean  GENERATED ALWAYS AS ((attributes & 32) <> 0) STORED,
    PRIMARY KEY (topic, partition, last_offset)
);

-- One row per record: the table people query. `timestamp_ms` is what consumers see (milliseconds
-- since the epoch). Records of aborted transactions stay (see skiff.aborted_transactions).
CREATE TABLE skiff.records (
    topic        text COLLATE "C" NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint  NOT NULL,
    timestamp_ms bigint  NOT NULL,
    key          bytea,
    value        bytea,
    headers      skiff.header[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (topic, partition, "offset")
);

-- What a partition remembers of an idempotent producer: `entry` is
-- skiff_storage::producers::ProducerEntry::encode (epoch and its last batches' sequences).
CREATE TABLE skiff.producer_states (
    topic       text COLLATE "C" NOT NULL,
    partition   integer NOT NULL,
    producer_id bigint  NOT NULL,
    entry       bytea   NOT NULL,
    PRIMARY KEY (topic, partition, producer_id)
);

-- Transactions with records on a partition and no marker yet; the smallest `first_offset` of a
-- partition is its last stable offset.
CREATE TABLE skiff.open_transactions (
    topic        text COLLATE "C" NOT NULL,
    partition    integer NOT NULL,
    producer_id  bigint  NOT NULL,
    first_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition, producer_id)
);

-- Aborted transactions, for read_committed fetches; `last_offset` is the abort marker's offset.
CREATE TABLE skiff.aborted_transactions (
    topic        text COLLATE "C" NOT NULL,
    partition    integer NOT NULL,
    producer_id  bigint  NOT NULL,
    first_offset bigint  NOT NULL,
    last_offset  bigint  NOT NULL,
    PRIMARY KEY (topic, partition, last_offset)
);

-- Small mutable values changed by compare-and-set. Versions come from a sequence, so a version
-- is never handed out twice, even to a key deleted and created again.
CREATE SEQUENCE skiff.state_versions;
CREATE TABLE skiff.state (
    key     text COLLATE "C" PRIMARY KEY,
    value   bytea  NOT NULL,
    version bigint NOT NULL
);

-- A consumer group's committed position in a partition:
-- SELECT * FROM skiff.group_offsets WHERE group_id = 'billing'.
CREATE TABLE skiff.group_offsets (
    group_id            text COLLATE "C" NOT NULL,
    topic               text COLLATE "C" NOT NULL,
    partition           integer NOT NULL,
    committed_offset    bigint  NOT NULL,
    leader_epoch        integer NOT NULL,
    metadata            text,
    commit_timestamp_ms bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
