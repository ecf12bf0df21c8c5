//! The `parquet` table format: plain Parquet files that any reader globs, and nothing else to
//! trust.
//!
//! # Layout
//! ```text
//! <location>/<topic>/<partition>/<from, 20 digits>.parquet   one commit: offsets from..next
//! <location>/<topic>/_skiff/<partition>.last                 name of the latest commit (a hint)
//! ```
//! A commit is one file, created only if no file of that name exists (`If-None-Match: *` on
//! S3, an exclusive create on a file system), so the file appears whole and at most once: a
//! reader that globs `<topic>/*/*.parquet` (DuckDB, pyarrow, Spark) sees every committed row
//! exactly once and nothing uncommitted. The file is named after the offset its commit starts
//! at, which is where the previous commit ended, so two writers that both resume from the same
//! commit race for the same name and one loses. Each file's key-value metadata holds its
//! commit facts ([`super::metadata`]): the offsets it covers, the schema id, when.
//!
//! Resuming reads the `.last` hint, lists the partition's files after it (an S3 list with
//! `start-after`; the hint may be stale, never ahead) and reads the newest file's footer.
//! Directories and files starting with `_` are skipped by Arrow, DuckDB and Spark readers.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::file::metadata::ParquetMetaDataReader;

use super::location::store_error;
use super::{metadata, Commit, CommitOutcome, Committed, Location, Table};
use crate::SinkError;

/// One topic's table of plain Parquet files.
#[derive(Debug, Clone)]
pub struct ParquetTable {
    location: Location,
    topic: String,
}

/// The name of the file a commit from `from` writes: zero-padded, so names sort as offsets.
pub fn file_name(from: i64) -> String {
    format!("{from:020}.parquet")
}

impl ParquetTable {
    /// The table of `topic` under `location`.
    pub fn new(location: Location, topic: &str) -> ParquetTable {
        ParquetTable { location, topic: topic.to_owned() }
    }

    fn partition_dir(&self, partition: i32) -> Path {
        self.location.path(&[&self.topic, &partition.to_string()])
    }

    fn hint(&self, partition: i32) -> Path {
        self.location.path(&[&self.topic, "_skiff", &format!("{partition}.last")])
    }

    /// The newest committed file of a partition: after the hint, or from the start.
    async fn newest_file(&self, partition: i32) -> Result<Option<Path>, SinkError> {
        let store = self.location.store();
        let dir = self.partition_dir(partition);
        let hinted = match store.get(&self.hint(partition)).await {
            Ok(found) => {
                let name = found.bytes().await.map_err(store_error)?;
                std::str::from_utf8(&name).ok().map(|name| dir.clone().join(name.trim()))
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(error) => return Err(store_error(error)),
        };
        let listed = match &hinted {
            Some(after) => store.list_with_offset(Some(&dir), after),
            None => store.list(Some(&dir)),
        };
        let files: Vec<_> = listed.try_collect().await.map_err(store_error)?;
        let newest = files
            .into_iter()
            .map(|meta| meta.location)
            .filter(|path| path.filename().is_some_and(|name| name.ends_with(".parquet")))
            .max();
        Ok(newest.or(hinted))
    }
}

#[async_trait]
impl Table for ParquetTable {
    async fn committed(&self, partition: i32) -> Result<Option<Committed>, SinkError> {
        let Some(path) = self.newest_file(partition).await? else { return Ok(None) };
        let store = self.location.store();
        let bytes = match store.get(&path).await {
            Ok(found) => found.bytes().await.map_err(store_error)?,
            // A hint names only committed files, which are never deleted by the writer.
            Err(object_store::Error::NotFound { .. }) => {
                return Err(SinkError::Store(format!("{path} is named by the hint but missing")))
            }
            Err(error) => return Err(store_error(error)),
        };
        let facts = file_facts(&bytes).map_err(|e| SinkError::Parquet(format!("{path}: {e}")))?;
        let number = |key: &str| -> Result<i64, SinkError> {
            facts
                .get(key)
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| SinkError::Parquet(format!("{path} has no {key} in its metadata")))
        };
        Ok(Some(Committed {
            next_offset: number(metadata::NEXT_OFFSET)?,
            committed_at_ms: number(metadata::COMMITTED_AT_MS)?,
            topic_id: facts.get(metadata::TOPIC_ID).cloned().unwrap_or_default(),
        }))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, SinkError> {
        let store = self.location.store();
        let name = file_name(commit.from);
        let path = self.partition_dir(commit.partition).join(name.as_str());
        let payload = PutPayload::from(Bytes::from(commit.file.bytes.clone()));
        let create = PutOptions::from(PutMode::Create);
        match store.put_opts(&path, payload, create).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(CommitOutcome::Conflict),
            Err(error) => return Err(store_error(error)),
        }
        // Only a hint: if this write is lost, resuming lists a little more.
        let hint = PutPayload::from(Bytes::from(name));
        if let Err(error) = store.put(&self.hint(commit.partition), hint).await {
            tracing::debug!(%error, topic = %self.topic, "table hint not written");
        }
        Ok(CommitOutcome::Committed)
    }
}

/// The key-value metadata of a Parquet file held in memory.
pub fn file_facts(
    bytes: &Bytes,
) -> Result<BTreeMap<String, String>, parquet::errors::ParquetError> {
    let parsed = ParquetMetaDataReader::new().parse_and_finish(bytes)?;
    let pairs = parsed.file_metadata().key_value_metadata().cloned().unwrap_or_default();
    Ok(pairs.into_iter().filter_map(|pair| Some((pair.key, pair.value?))).collect())
}
