//! `MetaStore`: `skiff.topics`, `skiff.topic_configs` and the partition rows.
//!
//! Name uniqueness is the primary key's (`INSERT ... ON CONFLICT DO NOTHING`), so `AlreadyExists`
//! holds when brokers race. Changes to a topic lock its row first, so they apply one at a time.
//! Config keys and values are client strings, stored escaped (`crate::text`) so that U+0000
//! round-trips. Topic names are not: Kafka allows only `[a-zA-Z0-9._-]` (the broker refuses
//! others), so a name holding U+0000 names no topic and is answered as such without a query.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use skiff_storage::{ConfigChange, MetaStore, Result, StorageError, TopicMeta, TopicSpec};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db;
use crate::error::db_error;
use crate::sql;
use crate::text::{escape_all, unescape};
use crate::PostgresEngine;

/// Whether a topic of this name can exist here (`text` cannot hold U+0000).
pub(crate) fn is_storable_name(name: &str) -> bool {
    !name.contains('\0')
}

/// `NotFound` for a partition of a topic that cannot exist, before any query.
pub(crate) fn check_partition(partition: &skiff_storage::TopicPartition) -> Result<()> {
    if is_storable_name(&partition.topic) {
        Ok(())
    } else {
        Err(StorageError::NotFound(format!("partition {partition}")))
    }
}

fn not_found(name: &str) -> StorageError {
    StorageError::NotFound(format!("topic {name}"))
}

/// `name, id, partitions` (configs are filled in separately).
fn topic_from_row(row: &Row) -> Result<TopicMeta> {
    Ok(TopicMeta {
        name: row.try_get(0).map_err(db_error)?,
        id: row.try_get(1).map_err(db_error)?,
        partitions: row.try_get(2).map_err(db_error)?,
        configs: BTreeMap::new(),
    })
}

async fn configs_of<C: GenericClient>(client: &C, name: &str) -> Result<BTreeMap<String, String>> {
    let rows = db::query(client, sql::META_CONFIGS_OF_TOPIC, &[&name]).await?;
    rows.iter()
        .map(|row| {
            let key = unescape(row.try_get(0).map_err(db_error)?)?;
            Ok((key, unescape(row.try_get(1).map_err(db_error)?)?))
        })
        .collect()
}

/// One topic with its configs, found by `statement` bound to `key` (name or id).
async fn find_topic<C, K>(client: &C, statement: &str, key: &K) -> Result<Option<TopicMeta>>
where
    C: GenericClient,
    K: tokio_postgres::types::ToSql + Sync,
{
    let Some(row) = db::query_opt(client, statement, &[key]).await? else {
        return Ok(None);
    };
    let mut topic = topic_from_row(&row)?;
    topic.configs = configs_of(client, &topic.name).await?;
    Ok(Some(topic))
}

async fn all_topics<C: GenericClient>(client: &C) -> Result<Vec<TopicMeta>> {
    let rows = db::query(client, sql::META_TOPICS_ALL, &[]).await?;
    let mut topics: Vec<TopicMeta> = rows.iter().map(topic_from_row).collect::<Result<_>>()?;
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for row in db::query(client, sql::META_CONFIGS_ALL, &[]).await? {
        let topic: String = row.try_get(0).map_err(db_error)?;
        let key = unescape(row.try_get(1).map_err(db_error)?)?;
        let value = unescape(row.try_get(2).map_err(db_error)?)?;
        configs.entry(topic).or_default().insert(key, value);
    }
    for topic in &mut topics {
        topic.configs = configs.remove(&topic.name).unwrap_or_default();
    }
    Ok(topics)
}

/// Sets config overrides in one statement.
async fn upsert_configs<'a, C: GenericClient>(
    client: &C,
    name: &str,
    configs: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<()> {
    let (keys, values): (Vec<&String>, Vec<&String>) = configs.unzip();
    if keys.is_empty() {
        return Ok(());
    }
    let keys = escape_all(keys.into_iter().map(String::as_str));
    let values = escape_all(values.into_iter().map(String::as_str));
    db::execute(client, sql::META_CONFIGS_UPSERT, &[&name, &keys, &values]).await?;
    Ok(())
}

/// The topic's row, locked until the caller's transaction ends.
async fn lock_topic<C: GenericClient>(client: &C, name: &str) -> Result<TopicMeta> {
    let row = db::query_opt(client, sql::META_TOPIC_LOCK, &[&name]).await?;
    topic_from_row(&row.ok_or_else(|| not_found(name))?)
}

#[async_trait]
impl MetaStore for PostgresEngine {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        self.limited("create_topic", async {
            if spec.partitions <= 0 {
                return Err(StorageError::InvalidArgument(format!(
                    "topic {} cannot have {} partitions",
                    spec.name, spec.partitions
                )));
            }
            if !is_storable_name(&spec.name) {
                return Err(StorageError::InvalidArgument(format!(
                    "topic name {:?} holds U+0000",
                    spec.name
                )));
            }
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let id = Uuid::new_v4();
            let inserted =
                db::query_opt(&tx, sql::META_TOPIC_INSERT, &[&spec.name, &id, &spec.partitions])
                    .await?;
            if inserted.is_none() {
                return Err(StorageError::AlreadyExists(format!("topic {}", spec.name)));
            }
            db::execute(&tx, sql::META_PARTITIONS_INSERT, &[&spec.name, &0i32, &spec.partitions])
                .await?;
            upsert_configs(&tx, &spec.name, spec.configs.iter()).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(TopicMeta {
                name: spec.name,
                id,
                partitions: spec.partitions,
                configs: spec.configs,
            })
        })
        .await
    }

    /// Locks the partitions first, so appends in flight commit before their rows are deleted.
    async fn delete_topic(&self, name: &str) -> Result<()> {
        if !is_storable_name(name) {
            return Err(not_found(name));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        db::execute(&tx, sql::META_PARTITIONS_LOCK, &[&name]).await?;
        let deleted = db::query_opt(&tx, sql::META_TOPIC_DELETE, &[&name]).await?;
        if deleted.is_none() {
            return Err(not_found(name));
        }
        tx.commit().await.map_err(db_error)
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.limited("topics", async {
            let mut client = self.client().await?;
            // One snapshot for topics and configs.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_error)?;
            let topics = all_topics(&tx).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(topics)
        })
        .await
    }

    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        self.limited("topic", async {
            if !is_storable_name(name) {
                return Ok(None);
            }
            let client = self.client().await?;
            find_topic(&client, sql::META_TOPIC_BY_NAME, &name).await
        })
        .await
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        self.limited("topic_by_id", async {
            let client = self.client().await?;
            find_topic(&client, sql::META_TOPIC_BY_ID, &id).await
        })
        .await
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        self.limited("create_partitions", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let mut topic = lock_topic(&tx, name).await?;
            let current = topic.partitions;
            if count <= current {
                return Err(StorageError::InvalidArgument(format!(
                    "topic {name} has {current} partitions; the new count {count} must be larger"
                )));
            }
            db::execute(&tx, sql::META_PARTITIONS_INSERT, &[&name, &current, &count]).await?;
            db::execute(&tx, sql::META_TOPIC_SET_PARTITIONS, &[&name, &count]).await?;
            topic.configs = configs_of(&tx, name).await?;
            tx.commit().await.map_err(db_error)?;
            topic.partitions = count;
            Ok(topic)
        })
        .await
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        self.limited("alter_configs", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let mut topic = lock_topic(&tx, name).await?;
            if replace_all {
                db::execute(&tx, sql::META_CONFIGS_DELETE_ALL, &[&name]).await?;
            }
            // Later changes of the same key win, as if applied one by one.
            let mut final_values: BTreeMap<String, Option<String>> = BTreeMap::new();
            for change in changes {
                final_values.insert(change.key, change.value);
            }
            let removed = escape_all(
                final_values
                    .iter()
                    .filter(|(_, value)| value.is_none())
                    .map(|(key, _)| key.as_str()),
            );
            if !removed.is_empty() {
                db::execute(&tx, sql::META_CONFIGS_DELETE_KEYS, &[&name, &removed]).await?;
            }
            let set =
                final_values.iter().filter_map(|(key, value)| value.as_ref().map(|v| (key, v)));
            upsert_configs(&tx, name, set).await?;
            topic.configs = configs_of(&tx, name).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(topic)
        })
        .await
    }
}
