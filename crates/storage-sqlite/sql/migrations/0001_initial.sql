-- Version 1: topics, partition logs and compare-and-set state.

-- A topic. `name` is how clients address it and `id` is its Kafka topic id (a UUID as text).
-- `topic_key` is the compact key the other tables use; AUTOINCREMENT so that a recreated topic
-- never reuses a deleted topic's key.
CREATE TABLE topics (
    topic_key  INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    id         TEXT    NOT NULL UNIQUE,
    partitions INTEGER NOT NULL CHECK (partitions >= 0)
);

-- Config overrides of a topic; broker defaults are not stored.
CREATE TABLE topic_configs (
    topic_key INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (topic_key, key)
) WITHOUT ROWID;

-- One row per partition: its watermarks. `high` is the offset the next record gets; appends
-- read and advance it inside a write transaction, which is what serialises brokers.
CREATE TABLE partitions (
    topic_key INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    log_start INTEGER NOT NULL,
    high      INTEGER NOT NULL,
    PRIMARY KEY (topic_key, partition)
) WITHOUT ROWID;

-- One row per record batch, kept as the producer sent it (base offset rewritten). Batches of a
-- partition never overlap, so ordering by `last_offset` is ordering by offset.
CREATE TABLE batches (
    topic_key     INTEGER NOT NULL,
    partition     INTEGER NOT NULL,
    base_offset   INTEGER NOT NULL,
    last_offset   INTEGER NOT NULL,
    max_timestamp INTEGER NOT NULL,
    bytes         BLOB    NOT NULL
);

-- Fetch: the batches holding offsets at or after X, in offset order. It also carries
-- `max_timestamp` so that ListOffsets by time scans this index alone, never the batches. A
-- separate time index would make those rare lookups faster but costs about a third of append
-- throughput (one more b-tree page per partition per commit). Not UNIQUE: with max_timestamp in
-- it that would mean little, and offsets cannot repeat anyway (assigned under the write lock).
CREATE INDEX batches_by_offset ON batches (topic_key, partition, last_offset, max_timestamp);

-- Small mutable values changed by compare-and-set.
CREATE TABLE state (
    key     TEXT    PRIMARY KEY,
    value   BLOB    NOT NULL,
    version INTEGER NOT NULL
);

-- Counters shared by every process using the file. `state_version` numbers state writes, so a
-- version is never reused, even by a key deleted and created again.
CREATE TABLE sequences (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO sequences (name, value) VALUES ('state_version', 0);
