-- Version 2: idempotent producers' sequence state and consumer groups' committed offsets.

-- What a partition remembers of an idempotent producer: its epoch and its last few batches'
-- sequence ranges (`entry`, encoded by skiff_storage::producers::ProducerEntry::encode). Read and
-- written in the same transaction as the append it checks.
CREATE TABLE producer_states (
    topic_key   INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    producer_id INTEGER NOT NULL,
    entry       BLOB    NOT NULL,
    PRIMARY KEY (topic_key, partition, producer_id)
) WITHOUT ROWID;

-- A consumer group's committed position in a partition, one row each, queryable:
-- SELECT * FROM group_offsets WHERE group_id = 'billing'.
CREATE TABLE group_offsets (
    group_id         TEXT    NOT NULL,
    topic            TEXT    NOT NULL,
    partition        INTEGER NOT NULL,
    committed_offset INTEGER NOT NULL,
    leader_epoch     INTEGER NOT NULL,
    metadata         TEXT,
    commit_timestamp INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
