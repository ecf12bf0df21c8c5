//! Every statement the engine runs, loaded from `sql/**/*.sql`.

/// A versioned schema change.
pub(crate) struct Migration {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Applied in order; a database records the ones it has in `skiff.schema_migrations`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../sql/migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "outbox",
        sql: include_str!("../sql/migrations/0002_outbox.sql"),
    },
    Migration {
        version: 3,
        name: "client_strings",
        sql: include_str!("../sql/migrations/0003_client_strings.sql"),
    },
    Migration {
        version: 4,
        name: "schema_guard",
        sql: include_str!("../sql/migrations/0004_schema_guard.sql"),
    },
];

pub(crate) const LOG_ABORTED_BETWEEN: &str = include_str!("../sql/log/aborted_between.sql");
pub(crate) const LOG_ABORTED_INSERT: &str = include_str!("../sql/log/aborted_insert.sql");
pub(crate) const LOG_BATCHES_INSERT: &str = include_str!("../sql/log/batches_insert.sql");
pub(crate) const LOG_DELETE_BEFORE: &str = include_str!("../sql/log/delete_before.sql");
pub(crate) const LOG_REMOVE_RECORDS: &str = include_str!("../sql/log/remove_records.sql");
pub(crate) const LOG_FETCH: &str = include_str!("../sql/log/fetch.sql");
pub(crate) const LOG_MAX_TIMESTAMP: &str = include_str!("../sql/log/max_timestamp.sql");
pub(crate) const LOG_BATCH_SIZES: &str = include_str!("../sql/log/batch_sizes.sql");
pub(crate) const LOG_OFFSET_FOR_TIME: &str = include_str!("../sql/log/offset_for_time.sql");
pub(crate) const LOG_OPEN_DELETE: &str = include_str!("../sql/log/open_delete.sql");
pub(crate) const LOG_OPEN_GET: &str = include_str!("../sql/log/open_get.sql");
pub(crate) const LOG_OPEN_INSERT: &str = include_str!("../sql/log/open_insert.sql");
pub(crate) const LOG_PARTITION_GET: &str = include_str!("../sql/log/partition_get.sql");
pub(crate) const LOG_PARTITION_LOCK: &str = include_str!("../sql/log/partition_lock.sql");
pub(crate) const LOG_PARTITION_SET_HIGH: &str = include_str!("../sql/log/partition_set_high.sql");
pub(crate) const LOG_PRODUCERS_GET: &str = include_str!("../sql/log/producers_get.sql");
pub(crate) const LOG_PRODUCERS_OF_PARTITION: &str =
    include_str!("../sql/log/producers_of_partition.sql");
pub(crate) const LOG_PRODUCERS_UPSERT: &str = include_str!("../sql/log/producers_upsert.sql");
pub(crate) const LOG_RECORDS_COLUMNS: &str = include_str!("../sql/log/records_columns.sql");
#[cfg(not(feature = "bench-insert"))]
pub(crate) const LOG_RECORDS_COPY: &str = include_str!("../sql/log/records_copy.sql");
#[cfg(feature = "bench-insert")]
pub(crate) const LOG_RECORDS_INSERT_BENCH: &str =
    include_str!("../sql/log/records_insert_bench.sql");
pub(crate) const META_CONFIGS_ALL: &str = include_str!("../sql/meta/configs_all.sql");
pub(crate) const META_CONFIGS_DELETE_ALL: &str = include_str!("../sql/meta/configs_delete_all.sql");
pub(crate) const META_CONFIGS_DELETE_KEYS: &str =
    include_str!("../sql/meta/configs_delete_keys.sql");
pub(crate) const META_CONFIGS_OF_TOPIC: &str = include_str!("../sql/meta/configs_of_topic.sql");
pub(crate) const META_CONFIGS_UPSERT: &str = include_str!("../sql/meta/configs_upsert.sql");
pub(crate) const META_PARTITIONS_INSERT: &str = include_str!("../sql/meta/partitions_insert.sql");
pub(crate) const META_PARTITIONS_LOCK: &str = include_str!("../sql/meta/partitions_lock.sql");
pub(crate) const META_TOPIC_BY_ID: &str = include_str!("../sql/meta/topic_by_id.sql");
pub(crate) const META_TOPIC_BY_NAME: &str = include_str!("../sql/meta/topic_by_name.sql");
pub(crate) const META_TOPIC_DELETE: &str = include_str!("../sql/meta/topic_delete.sql");
pub(crate) const META_TOPIC_INSERT: &str = include_str!("../sql/meta/topic_insert.sql");
pub(crate) const META_TOPIC_LOCK: &str = include_str!("../sql/meta/topic_lock.sql");
pub(crate) const META_TOPIC_SET_PARTITIONS: &str =
    include_str!("../sql/meta/topic_set_partitions.sql");
pub(crate) const META_TOPICS_ALL: &str = include_str!("../sql/meta/topics_all.sql");
pub(crate) const OFFSETS_DELETE_GROUP: &str = include_str!("../sql/offsets/delete_group.sql");
pub(crate) const OFFSETS_DELETE_PARTITIONS: &str =
    include_str!("../sql/offsets/delete_partitions.sql");
pub(crate) const OFFSETS_GROUPS: &str = include_str!("../sql/offsets/groups.sql");
pub(crate) const OFFSETS_OF_GROUP: &str = include_str!("../sql/offsets/of_group.sql");
pub(crate) const OFFSETS_OF_PARTITIONS: &str = include_str!("../sql/offsets/of_partitions.sql");
pub(crate) const OFFSETS_UPSERT: &str = include_str!("../sql/offsets/upsert.sql");
pub(crate) const SCHEMA_BOOTSTRAP: &str = include_str!("../sql/schema/bootstrap.sql");
pub(crate) const SCHEMA_LOCK: &str = include_str!("../sql/schema/lock.sql");
pub(crate) const SCHEMA_VERSION_CURRENT: &str = include_str!("../sql/schema/version_current.sql");
pub(crate) const SCHEMA_VERSION_RECORD: &str = include_str!("../sql/schema/version_record.sql");
pub(crate) const STATE_DELETE: &str = include_str!("../sql/state/delete.sql");
pub(crate) const STATE_GET: &str = include_str!("../sql/state/get.sql");
pub(crate) const STATE_INSERT: &str = include_str!("../sql/state/insert.sql");
pub(crate) const STATE_LIST: &str = include_str!("../sql/state/list.sql");
pub(crate) const STATE_UPDATE: &str = include_str!("../sql/state/update.sql");
