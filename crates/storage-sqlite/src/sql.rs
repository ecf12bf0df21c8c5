//! Every SQL statement the engine runs, loaded from `sql/` (house rule: SQL lives in `.sql`
//! files). One file per statement so that each can be read, tried in `sqlite3` and
//! `EXPLAIN QUERY PLAN`ned on its own; names mirror the file paths.

macro_rules! statements {
    ($($name:ident = $file:literal;)*) => {
        $(pub(crate) const $name: &str = include_str!(concat!("../sql/", $file));)*
    };
}

/// A schema migration: applied once, in order, inside one write transaction.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, oldest first. Append only: never edit one that has shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../sql/migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "producers and offsets",
        sql: include_str!("../sql/migrations/0002_producers_and_offsets.sql"),
    },
    Migration {
        version: 3,
        name: "transactions",
        sql: include_str!("../sql/migrations/0003_transactions.sql"),
    },
];

statements! {
    SCHEMA_VERSION_TABLE = "schema/version_table.sql";
    SCHEMA_VERSION_CURRENT = "schema/version_current.sql";
    SCHEMA_VERSION_RECORD = "schema/version_record.sql";

    BEGIN_IMMEDIATE = "control/begin_immediate.sql";
    BEGIN_DEFERRED = "control/begin_deferred.sql";
    COMMIT = "control/commit.sql";
    ROLLBACK = "control/rollback.sql";
    SAVEPOINT = "control/savepoint.sql";
    RELEASE = "control/release.sql";
    ROLLBACK_TO = "control/rollback_to.sql";

    TOPIC_INSERT = "meta/topic_insert.sql";
    TOPIC_BY_NAME = "meta/topic_by_name.sql";
    TOPIC_BY_ID = "meta/topic_by_id.sql";
    TOPICS_ALL = "meta/topics_all.sql";
    TOPIC_SET_PARTITIONS = "meta/topic_set_partitions.sql";
    TOPIC_DELETE = "meta/topic_delete.sql";
    PARTITION_INSERT = "meta/partition_insert.sql";
    PARTITIONS_DELETE = "meta/partitions_delete.sql";
    BATCHES_DELETE = "meta/batches_delete.sql";
    CONFIG_UPSERT = "meta/config_upsert.sql";
    CONFIG_DELETE = "meta/config_delete.sql";
    CONFIGS_DELETE = "meta/configs_delete.sql";
    CONFIGS_OF_TOPIC = "meta/configs_of_topic.sql";
    CONFIGS_ALL = "meta/configs_all.sql";

    PARTITION_BY_NAME = "log/partition_by_name.sql";
    BATCH_INSERT = "log/batch_insert.sql";
    PARTITION_SET_HIGH = "log/partition_set_high.sql";
    PARTITION_SET_LOG_START = "log/partition_set_log_start.sql";
    BATCHES_DELETE_BEFORE = "log/batches_delete_before.sql";
    BATCHES_FROM = "log/batches_from.sql";
    BATCHES_REACHING_TIME = "log/batches_reaching_time.sql";
    BATCHES_BY_MAX_TIMESTAMP = "log/batches_by_max_timestamp.sql";
    BATCH_BYTES = "log/batch_bytes.sql";
    BATCHES_BETWEEN = "log/batches_between.sql";
    BATCH_REPLACE_BYTES = "log/batch_replace_bytes.sql";
    BATCH_DELETE = "log/batch_delete.sql";
    BATCH_SIZES = "log/batch_sizes.sql";

    PRODUCER_GET = "producers/get.sql";
    PRODUCER_UPSERT = "producers/upsert.sql";
    PRODUCERS_OF_PARTITION = "producers/of_partition.sql";
    PRODUCERS_DELETE_TOPIC = "producers/delete_topic.sql";

    OPEN_TRANSACTION_GET = "transactions/open_get.sql";
    OPEN_TRANSACTION_INSERT = "transactions/open_insert.sql";
    OPEN_TRANSACTION_DELETE = "transactions/open_delete.sql";
    OPEN_TRANSACTIONS_DELETE_TOPIC = "transactions/open_delete_topic.sql";
    ABORTED_INSERT = "transactions/aborted_insert.sql";
    ABORTED_BETWEEN = "transactions/aborted_between.sql";
    ABORTED_DELETE_BEFORE = "transactions/aborted_delete_before.sql";
    ABORTED_DELETE_TOPIC = "transactions/aborted_delete_topic.sql";

    OFFSETS_UPSERT = "offsets/upsert.sql";
    OFFSETS_OF_GROUP = "offsets/of_group.sql";
    OFFSETS_ONE = "offsets/one.sql";
    OFFSETS_DELETE_GROUP = "offsets/delete_group.sql";
    OFFSETS_DELETE_ONE = "offsets/delete_one.sql";
    OFFSETS_DELETE_TOPIC = "offsets/delete_topic.sql";
    OFFSETS_GROUPS = "offsets/groups.sql";

    STATE_GET = "state/get.sql";
    STATE_VERSION = "state/version.sql";
    STATE_LIST_FROM = "state/list_from.sql";
    STATE_UPSERT = "state/upsert.sql";
    STATE_DELETE = "state/delete.sql";
    STATE_NEXT_VERSION = "state/next_version.sql";
}
