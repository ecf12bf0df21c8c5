//! `StateStore`: `skiff.state (key, value, version)`, changed by compare-and-set.
//!
//! Each change is one statement whose condition is the compare: `INSERT ... ON CONFLICT DO
//! NOTHING` when the key must not exist, `UPDATE ... WHERE version = $n` otherwise. Whichever of
//! several racing brokers commits first wins; the others' statements match no row and answer
//! `Conflict`. Versions come from the sequence `skiff.state_versions`, so none is reused.
//! Keys hold client ids (`groups/<group id>`, `transactions/<transactional id>`), so they are
//! stored escaped (`crate::text`): a key holding U+0000 round-trips, and key order and prefix
//! scans are those of the keys themselves.

use async_trait::async_trait;
use bytes::Bytes;
use skiff_storage::{Result, StateStore, StorageError, Versioned};
use tokio_postgres::Row;

use crate::db;
use crate::error::db_error;
use crate::sql;
use crate::text::{escape, unescape};
use crate::PostgresEngine;

fn version_from(stored: i64, key: &str) -> Result<u64> {
    u64::try_from(stored)
        .map_err(|_| StorageError::Corrupt(format!("state {key} has version {stored}")))
}

fn stored_version(expected: u64, key: &str) -> Result<i64> {
    i64::try_from(expected)
        .map_err(|_| StorageError::Conflict(format!("{key}: no version {expected} exists")))
}

fn versioned(row: &Row, key: &str, value_at: usize) -> Result<Versioned> {
    let value: Vec<u8> = row.try_get(value_at).map_err(db_error)?;
    let version: i64 = row.try_get(value_at + 1).map_err(db_error)?;
    Ok(Versioned { value: Bytes::from(value), version: version_from(version, key)? })
}

#[async_trait]
impl StateStore for PostgresEngine {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.limited("state_get", async {
            let stored_key = escape(key);
            let client = self.client().await?;
            let row = db::query_opt(&client, sql::STATE_GET, &[&stored_key]).await?;
            row.map(|row| versioned(&row, key, 0)).transpose()
        })
        .await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        self.limited("state_put", async {
            let stored_key = escape(key);
            let client = self.client().await?;
            let value = value.as_ref();
            let row = match expected {
                None => db::query_opt(&client, sql::STATE_INSERT, &[&stored_key, &value]).await?,
                Some(expected) => {
                    let expected = stored_version(expected, key)?;
                    db::query_opt(&client, sql::STATE_UPDATE, &[&stored_key, &value, &expected])
                        .await?
                }
            };
            let Some(row) = row else {
                return Err(StorageError::Conflict(format!(
                    "{key}: expected version {expected:?} is not the stored one"
                )));
            };
            version_from(row.try_get(0).map_err(db_error)?, key)
        })
        .await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        self.limited("state_delete", async {
            let stored_key = escape(key);
            let client = self.client().await?;
            let version = stored_version(expected, key)?;
            if db::query_opt(&client, sql::STATE_DELETE, &[&stored_key, &version]).await?.is_some()
            {
                return Ok(());
            }
            match db::query_opt(&client, sql::STATE_GET, &[&stored_key]).await? {
                None => Err(StorageError::NotFound(key.to_owned())),
                Some(_) => Err(StorageError::Conflict(format!(
                    "{key}: expected version {expected} is not the stored one"
                ))),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.limited("state_list", async {
            let stored_prefix = escape(prefix);
            let client = self.client().await?;
            let rows = db::query(&client, sql::STATE_LIST, &[&stored_prefix]).await?;
            rows.iter()
                .map(|row| {
                    let key = unescape(row.try_get(0).map_err(db_error)?)?;
                    let value = versioned(row, &key, 1)?;
                    Ok((key, value))
                })
                .collect()
        })
        .await
    }
}
