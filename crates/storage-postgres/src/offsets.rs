//! `OffsetStore`: committed offsets as rows of `skiff.group_offsets`, one per (group, topic,
//! partition), so `SELECT * FROM skiff.group_offsets WHERE group_id = 'billing'` shows a group's
//! positions. Every call is one statement over arrays of partitions: a commit of many partitions
//! is all rows or none. Group ids are stored escaped (`crate::text`) and metadata as `bytea`, so
//! both come back byte for byte even when they hold U+0000.

use std::collections::BTreeMap;

use async_trait::async_trait;
use skiff_storage::{CommittedOffset, OffsetStore, Result, StorageError, TopicPartition};
use tokio_postgres::Row;

use crate::db;
use crate::error::db_error;
use crate::sql;
use crate::text::{escape, unescape};
use crate::PostgresEngine;

/// Stored metadata (the UTF-8 bytes the client sent) as the string it was.
fn metadata_from(stored: Option<Vec<u8>>) -> Result<Option<String>> {
    stored
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|error| {
                StorageError::Corrupt(format!("committed offset metadata is not utf-8: {error}"))
            })
        })
        .transpose()
}

fn from_row(row: &Row) -> Result<(TopicPartition, CommittedOffset)> {
    let get = |index| row.try_get::<_, i64>(index).map_err(db_error);
    Ok((
        TopicPartition::new(row.try_get::<_, String>(0).map_err(db_error)?, {
            row.try_get(1).map_err(db_error)?
        }),
        CommittedOffset {
            offset: get(2)?,
            leader_epoch: row.try_get(3).map_err(db_error)?,
            metadata: metadata_from(row.try_get(4).map_err(db_error)?)?,
            commit_timestamp_ms: get(5)?,
        },
    ))
}

/// Topics and partition numbers as the two arrays the statements unnest.
fn columns(partitions: &[TopicPartition]) -> (Vec<&str>, Vec<i32>) {
    partitions.iter().map(|tp| (tp.topic.as_str(), tp.partition)).unzip()
}

#[async_trait]
impl OffsetStore for PostgresEngine {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        self.limited("commit_offsets", async {
            // A partition named twice: the later commit wins (one upsert may touch a row only once).
            let latest: BTreeMap<TopicPartition, CommittedOffset> = offsets.into_iter().collect();
            let mut topics = Vec::with_capacity(latest.len());
            let mut partitions = Vec::with_capacity(latest.len());
            let mut positions = Vec::with_capacity(latest.len());
            let mut epochs = Vec::with_capacity(latest.len());
            let mut metadata = Vec::with_capacity(latest.len());
            let mut timestamps = Vec::with_capacity(latest.len());
            for (partition, offset) in &latest {
                topics.push(partition.topic.as_str());
                partitions.push(partition.partition);
                positions.push(offset.offset);
                epochs.push(offset.leader_epoch);
                metadata.push(offset.metadata.as_deref().map(str::as_bytes));
                timestamps.push(offset.commit_timestamp_ms);
            }
            let group = escape(group);
            let client = self.client().await?;
            db::execute(
                &client,
                sql::OFFSETS_UPSERT,
                &[&group, &topics, &partitions, &positions, &epochs, &metadata, &timestamps],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        self.limited("committed_offsets", async {
            let group = escape(group);
            let client = self.client().await?;
            let rows = match partitions {
                None => db::query(&client, sql::OFFSETS_OF_GROUP, &[&group]).await?,
                Some(wanted) => {
                    let (topics, numbers) = columns(wanted);
                    db::query(&client, sql::OFFSETS_OF_PARTITIONS, &[&group, &topics, &numbers])
                        .await?
                }
            };
            rows.iter().map(from_row).collect()
        })
        .await
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        self.limited("delete_offsets", async {
            let group = escape(group);
            let client = self.client().await?;
            match partitions {
                None => db::execute(&client, sql::OFFSETS_DELETE_GROUP, &[&group]).await?,
                Some(wanted) => {
                    let (topics, numbers) = columns(wanted);
                    db::execute(
                        &client,
                        sql::OFFSETS_DELETE_PARTITIONS,
                        &[&group, &topics, &numbers],
                    )
                    .await?
                }
            };
            Ok(())
        })
        .await
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        self.limited("offset_groups", async {
            let client = self.client().await?;
            let rows = db::query(&client, sql::OFFSETS_GROUPS, &[]).await?;
            rows.iter().map(|row| unescape(row.try_get(0).map_err(db_error)?)).collect()
        })
        .await
    }
}
