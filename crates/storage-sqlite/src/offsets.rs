//! `OffsetStore`: committed offsets as rows of `group_offsets`, one per (group, topic,
//! partition), so `SELECT * FROM group_offsets WHERE group_id = 'billing'` shows a group's
//! positions. A commit of many partitions is one writer command: all rows or none.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use skiff_storage::{CommittedOffset, OffsetStore, Result, TopicPartition};

use crate::error::db_error;
use crate::sql;
use crate::SqliteEngine;

fn commit(
    conn: &Connection,
    group: &str,
    offsets: &[(TopicPartition, CommittedOffset)],
) -> Result<()> {
    let mut upsert = conn.prepare_cached(sql::OFFSETS_UPSERT).map_err(db_error)?;
    for (partition, offset) in offsets {
        upsert
            .execute(params![
                group,
                partition.topic,
                partition.partition,
                offset.offset,
                offset.leader_epoch,
                offset.metadata,
                offset.commit_timestamp_ms
            ])
            .map_err(db_error)?;
    }
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<(TopicPartition, CommittedOffset)> {
    Ok((
        TopicPartition::new(row.get::<_, String>(0)?, row.get(1)?),
        CommittedOffset {
            offset: row.get(2)?,
            leader_epoch: row.get(3)?,
            metadata: row.get(4)?,
            commit_timestamp_ms: row.get(5)?,
        },
    ))
}

fn committed(
    conn: &Connection,
    group: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
    let mut found = Vec::new();
    match partitions {
        None => {
            let mut statement = conn.prepare_cached(sql::OFFSETS_OF_GROUP).map_err(db_error)?;
            let rows = statement.query_map(params![group], from_row).map_err(db_error)?;
            for row in rows {
                found.push(row.map_err(db_error)?);
            }
        }
        Some(wanted) => {
            let mut statement = conn.prepare_cached(sql::OFFSETS_ONE).map_err(db_error)?;
            for partition in wanted {
                let row = statement
                    .query_row(params![group, partition.topic, partition.partition], from_row)
                    .optional()
                    .map_err(db_error)?;
                found.extend(row);
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.dedup_by(|a, b| a.0 == b.0);
        }
    }
    Ok(found)
}

fn delete(conn: &Connection, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
    match partitions {
        None => {
            conn.prepare_cached(sql::OFFSETS_DELETE_GROUP)
                .and_then(|mut statement| statement.execute(params![group]))
                .map_err(db_error)?;
        }
        Some(wanted) => {
            let mut statement = conn.prepare_cached(sql::OFFSETS_DELETE_ONE).map_err(db_error)?;
            for partition in wanted {
                statement
                    .execute(params![group, partition.topic, partition.partition])
                    .map_err(db_error)?;
            }
        }
    }
    Ok(())
}

fn groups(conn: &Connection) -> Result<Vec<String>> {
    let mut statement = conn.prepare_cached(sql::OFFSETS_GROUPS).map_err(db_error)?;
    let rows = statement.query_map([], |row| row.get(0)).map_err(db_error)?;
    rows.map(|row| row.map_err(db_error)).collect()
}

#[async_trait]
impl OffsetStore for SqliteEngine {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        let group = group.to_owned();
        self.writer.write(move |conn| commit(conn, &group, &offsets)).await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        let group = group.to_owned();
        let partitions = partitions.map(<[TopicPartition]>::to_vec);
        self.readers.read(move |conn| committed(conn, &group, partitions.as_deref())).await
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        let group = group.to_owned();
        let partitions = partitions.map(<[TopicPartition]>::to_vec);
        self.writer.write(move |conn| delete(conn, &group, partitions.as_deref())).await
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        self.readers.read(groups).await
    }
}
