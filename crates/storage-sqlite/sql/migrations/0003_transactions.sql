-- Version 3: transactions on partitions.

-- A producer's transaction that has records on a partition but no marker yet. The smallest
-- `first_offset` of a partition is its last stable offset: read_committed consumers stop there.
CREATE TABLE open_transactions (
    topic_key    INTEGER NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    PRIMARY KEY (topic_key, partition, producer_id)
) WITHOUT ROWID;

-- Aborted transactions: read_committed fetches return those overlapping the fetched range so
-- clients drop their records. `last_offset` is the abort marker's offset.
CREATE TABLE aborted_transactions (
    topic_key    INTEGER NOT NULL,
    partition    INTEGER NOT NULL,
    producer_id  INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    last_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic_key, partition, last_offset)
) WITHOUT ROWID;
