//! `MetaStore`: topics, their partitions and config overrides.
//!
//! Writes run on the writer thread (so `AlreadyExists` holds even when brokers race: the name
//! check and the insert share one `BEGIN IMMEDIATE` transaction); reads use the reader pool.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use skiff_storage::{ConfigChange, MetaStore, Result, StorageError, TopicMeta, TopicSpec};
use uuid::Uuid;

use crate::error::{db_error, is_unique_violation};
use crate::sql;
use crate::transaction::read_snapshot;
use crate::SqliteEngine;

/// A topic row: the internal key the other tables use, and what callers see.
struct StoredTopic {
    key: i64,
    meta: TopicMeta,
}

/// Decodes `topic_key, name, id, partitions` (configs are filled in separately).
fn topic_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String, String, i32)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn stored_topic((key, name, id, partitions): (i64, String, String, i32)) -> Result<StoredTopic> {
    let id = Uuid::parse_str(&id)
        .map_err(|error| StorageError::Corrupt(format!("topic {name} has id {id:?}: {error}")))?;
    Ok(StoredTopic { key, meta: TopicMeta { name, id, partitions, configs: BTreeMap::new() } })
}

fn configs_of(conn: &Connection, key: i64) -> Result<BTreeMap<String, String>> {
    let mut statement = conn.prepare_cached(sql::CONFIGS_OF_TOPIC).map_err(db_error)?;
    let rows = statement.query_map(params![key], |row| Ok((row.get(0)?, row.get(1)?)));
    rows.and_then(Iterator::collect).map_err(db_error)
}

/// One topic with its configs, found by `statement` (by name or by id) bound to `value`.
fn find_topic(conn: &Connection, statement: &str, value: &str) -> Result<Option<StoredTopic>> {
    let row = conn
        .prepare_cached(statement)
        .and_then(|mut prepared| prepared.query_row(params![value], topic_from_row).optional())
        .map_err(db_error)?;
    let Some(row) = row else { return Ok(None) };
    let mut topic = stored_topic(row)?;
    topic.meta.configs = configs_of(conn, topic.key)?;
    Ok(Some(topic))
}

fn topic_by_name(conn: &Connection, name: &str) -> Result<Option<StoredTopic>> {
    find_topic(conn, sql::TOPIC_BY_NAME, name)
}

fn existing_topic(conn: &Connection, name: &str) -> Result<StoredTopic> {
    topic_by_name(conn, name)?.ok_or_else(|| StorageError::NotFound(format!("topic {name}")))
}

/// Every topic ordered by name, with configs: two statements, not one per topic.
fn all_topics(conn: &Connection) -> Result<Vec<TopicMeta>> {
    let mut statement = conn.prepare_cached(sql::TOPICS_ALL).map_err(db_error)?;
    let rows: Vec<_> =
        statement.query_map([], topic_from_row).and_then(Iterator::collect).map_err(db_error)?;
    let mut configs = all_configs(conn)?;
    rows.into_iter()
        .map(|row| {
            let mut topic = stored_topic(row)?;
            topic.meta.configs = configs.remove(&topic.key).unwrap_or_default();
            Ok(topic.meta)
        })
        .collect()
}

fn all_configs(conn: &Connection) -> Result<HashMap<i64, BTreeMap<String, String>>> {
    let mut statement = conn.prepare_cached(sql::CONFIGS_ALL).map_err(db_error)?;
    let mut rows = statement.query([]).map_err(db_error)?;
    let mut configs: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        let key: i64 = row.get(0).map_err(db_error)?;
        let name: String = row.get(1).map_err(db_error)?;
        let value: String = row.get(2).map_err(db_error)?;
        configs.entry(key).or_default().insert(name, value);
    }
    Ok(configs)
}

fn run(conn: &Connection, statement: &str, params: impl rusqlite::Params) -> Result<()> {
    conn.prepare_cached(statement)
        .and_then(|mut prepared| prepared.execute(params))
        .map_err(db_error)?;
    Ok(())
}

fn insert_partitions(conn: &Connection, key: i64, partitions: std::ops::Range<i32>) -> Result<()> {
    let mut statement = conn.prepare_cached(sql::PARTITION_INSERT).map_err(db_error)?;
    for partition in partitions {
        statement.execute(params![key, partition]).map_err(db_error)?;
    }
    Ok(())
}

fn create_topic(conn: &Connection, spec: TopicSpec) -> Result<TopicMeta> {
    if spec.partitions <= 0 {
        return Err(StorageError::InvalidArgument(format!(
            "topic {} cannot have {} partitions",
            spec.name, spec.partitions
        )));
    }
    let already_exists = || StorageError::AlreadyExists(format!("topic {}", spec.name));
    if topic_by_name(conn, &spec.name)?.is_some() {
        return Err(already_exists());
    }
    let id = Uuid::new_v4();
    let key: i64 = conn
        .prepare_cached(sql::TOPIC_INSERT)
        .and_then(|mut insert| {
            insert.query_row(params![spec.name, id.to_string(), spec.partitions], |row| row.get(0))
        })
        .map_err(
            |error| if is_unique_violation(&error) { already_exists() } else { db_error(error) },
        )?;
    insert_partitions(conn, key, 0..spec.partitions)?;
    for (config, value) in &spec.configs {
        run(conn, sql::CONFIG_UPSERT, params![key, config, value])?;
    }
    Ok(TopicMeta { name: spec.name, id, partitions: spec.partitions, configs: spec.configs })
}

/// Removes the topic with its batches, partitions and configs: a topic created later under the
/// same name starts empty with a new id.
fn delete_topic(conn: &Connection, name: &str) -> Result<()> {
    let topic = existing_topic(conn, name)?;
    for statement in [
        sql::BATCHES_DELETE,
        sql::PRODUCERS_DELETE_TOPIC,
        sql::OPEN_TRANSACTIONS_DELETE_TOPIC,
        sql::ABORTED_DELETE_TOPIC,
        sql::PARTITIONS_DELETE,
        sql::CONFIGS_DELETE,
        sql::TOPIC_DELETE,
    ] {
        run(conn, statement, params![topic.key])?;
    }
    run(conn, sql::OFFSETS_DELETE_TOPIC, params![name])?;
    Ok(())
}

fn create_partitions(conn: &Connection, name: &str, count: i32) -> Result<TopicMeta> {
    let mut topic = existing_topic(conn, name)?;
    let current = topic.meta.partitions;
    if count <= current {
        return Err(StorageError::InvalidArgument(format!(
            "topic {name} has {current} partitions; the new count {count} must be larger"
        )));
    }
    insert_partitions(conn, topic.key, current..count)?;
    run(conn, sql::TOPIC_SET_PARTITIONS, params![topic.key, count])?;
    topic.meta.partitions = count;
    Ok(topic.meta)
}

fn alter_configs(
    conn: &Connection,
    name: &str,
    changes: Vec<ConfigChange>,
    replace_all: bool,
) -> Result<TopicMeta> {
    let topic = existing_topic(conn, name)?;
    if replace_all {
        run(conn, sql::CONFIGS_DELETE, params![topic.key])?;
    }
    for change in changes {
        match change.value {
            Some(value) => run(conn, sql::CONFIG_UPSERT, params![topic.key, change.key, value])?,
            None => run(conn, sql::CONFIG_DELETE, params![topic.key, change.key])?,
        }
    }
    existing_topic(conn, name).map(|topic| topic.meta)
}

#[async_trait]
impl MetaStore for SqliteEngine {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        self.writer.write(move |conn| create_topic(conn, spec)).await
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer.write(move |conn| delete_topic(conn, &name)).await
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.readers.read(|conn| read_snapshot(conn, all_topics)).await
    }

    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        let name = name.to_owned();
        let found = move |conn: &Connection| topic_by_name(conn, &name);
        let topic = self.readers.read(move |conn| read_snapshot(conn, found)).await?;
        Ok(topic.map(|topic| topic.meta))
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        let found = move |conn: &Connection| find_topic(conn, sql::TOPIC_BY_ID, &id.to_string());
        let topic = self.readers.read(move |conn| read_snapshot(conn, found)).await?;
        Ok(topic.map(|topic| topic.meta))
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        let name = name.to_owned();
        self.writer.write(move |conn| create_partitions(conn, &name, count)).await
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        let name = name.to_owned();
        self.writer.write(move |conn| alter_configs(conn, &name, changes, replace_all)).await
    }
}
