//! `StateStore`: small values changed by compare-and-set.
//!
//! The check and the write share the writer's `BEGIN IMMEDIATE` transaction, so exactly one of
//! several racing brokers wins. Versions come from a counter stored in the file (`sequences`):
//! every put gets a version never handed out before, even for a key deleted and created again,
//! so a stale compare-and-set can never succeed by accident.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use skiff_storage::{Result, StateStore, StorageError, Versioned};

use crate::error::db_error;
use crate::sql;
use crate::SqliteEngine;

fn version_from(stored: i64, key: &str) -> Result<u64> {
    u64::try_from(stored)
        .map_err(|_| StorageError::Corrupt(format!("state {key} has version {stored}")))
}

fn get(conn: &Connection, key: &str) -> Result<Option<Versioned>> {
    let row: Option<(Vec<u8>, i64)> = conn
        .prepare_cached(sql::STATE_GET)
        .and_then(|mut statement| {
            statement.query_row(params![key], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(db_error)?;
    row.map(|(value, version)| {
        Ok(Versioned { value: Bytes::from(value), version: version_from(version, key)? })
    })
    .transpose()
}

fn current_version(conn: &Connection, key: &str) -> Result<Option<u64>> {
    let version: Option<i64> = conn
        .prepare_cached(sql::STATE_VERSION)
        .and_then(|mut statement| statement.query_row(params![key], |row| row.get(0)).optional())
        .map_err(db_error)?;
    version.map(|version| version_from(version, key)).transpose()
}

fn put(conn: &Connection, key: &str, value: &[u8], expected: Option<u64>) -> Result<u64> {
    let current = current_version(conn, key)?;
    if current != expected {
        return Err(StorageError::Conflict(format!(
            "{key}: expected version {expected:?}, found {current:?}"
        )));
    }
    let version: i64 = conn
        .prepare_cached(sql::STATE_NEXT_VERSION)
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(db_error)?;
    conn.prepare_cached(sql::STATE_UPSERT)
        .and_then(|mut statement| statement.execute(params![key, value, version]))
        .map_err(db_error)?;
    version_from(version, key)
}

fn delete(conn: &Connection, key: &str, expected: u64) -> Result<()> {
    match current_version(conn, key)? {
        None => Err(StorageError::NotFound(key.to_owned())),
        Some(version) if version != expected => Err(StorageError::Conflict(format!(
            "{key}: expected version {expected}, found {version}"
        ))),
        Some(_) => {
            conn.prepare_cached(sql::STATE_DELETE)
                .and_then(|mut statement| statement.execute(params![key]))
                .map_err(db_error)?;
            Ok(())
        }
    }
}

/// Keys from `prefix` on in key order, stopping at the first key outside it: one statement that
/// touches only the matching range.
fn list(conn: &Connection, prefix: &str) -> Result<Vec<(String, Versioned)>> {
    let mut statement = conn.prepare_cached(sql::STATE_LIST_FROM).map_err(db_error)?;
    let mut rows = statement.query(params![prefix]).map_err(db_error)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(db_error)? {
        let key: String = row.get(0).map_err(db_error)?;
        if !key.starts_with(prefix) {
            break;
        }
        let value: Vec<u8> = row.get(1).map_err(db_error)?;
        let version = version_from(row.get(2).map_err(db_error)?, &key)?;
        found.push((key, Versioned { value: Bytes::from(value), version }));
    }
    Ok(found)
}

#[async_trait]
impl StateStore for SqliteEngine {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        let key = key.to_owned();
        self.readers.read(move |conn| get(conn, &key)).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        let key = key.to_owned();
        self.writer.write(move |conn| put(conn, &key, &value, expected)).await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        let key = key.to_owned();
        self.writer.write(move |conn| delete(conn, &key, expected)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        let prefix = prefix.to_owned();
        self.readers.read(move |conn| list(conn, &prefix)).await
    }
}
