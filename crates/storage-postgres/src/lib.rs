//! `postgres://user:password@host:port/database`: records as rows that people query with SQL.
//!
//! Several stateless brokers share one database. Every fact lives in the schema `skiff`, which the
//! engine creates and migrates itself (`schema`, `sql/migrations/`); `docs/storage/postgres.md`
//! describes the tables. The main ones:
//!
//! - `skiff.records`: one row per record (topic, partition, offset, timestamp_ms, key, value,
//!   headers as an ordered `skiff.header[]`), so `SELECT key, value FROM skiff.records WHERE topic
//!   = 'orders'` just works.
//! - `skiff.batches`: one row per record batch with what Fetch needs to rebuild it (producer id,
//!   epoch and sequence, attributes, timestamps) and its size, to budget fetches.
//! - `skiff.partitions`: the watermarks. An append locks its partition's row (`FOR UPDATE`), plans
//!   with `skiff_storage::producers::plan_append` on producer state read in the same transaction,
//!   writes the records with binary `COPY`, the batch rows, producer states and transactions,
//!   advances the watermark and commits: acknowledged means committed, and concurrent brokers get
//!   unique, gap-free offsets.
//!
//! # Layout
//!
//! - `options`: the URL (libpq style; `sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
//!   `pool_size`); `tls`: rustls with libpq's `sslmode` semantics (`prefer` by default);
//!   `connect`: `prefer` falling back to plain TCP when a TLS handshake fails, as libpq does;
//!   its [`Connector`] makes single connections the same way for others on the database (the
//!   Iceberg catalog).
//! - `schema`: versioned migrations under an advisory lock; `sql`: every statement, from `sql/`.
//! - `codec`: record batches to rows and back (headers keep repeated keys, in order).
//! - `text`: client strings (ids, config values, header keys) in `text` columns, losslessly: a
//!   Kafka string may hold U+0000, which Postgres `text` cannot.
//! - `append`, `log`: `LogStore`; `meta`: `MetaStore`; `state`: `StateStore` (compare-and-set on a
//!   version column); `offsets`: `OffsetStore` (`skiff.group_offsets`).
//! - `error`: Postgres errors as `StorageError` (unreachable servers are `Unavailable`: clients
//!   retry, and the pool reconnects by itself).
//!
//! The schema is created on first use, which `open` starts at once in the background: a broker
//! starts even while Postgres is down, answers `Unavailable` meanwhile, and recovers by itself.

mod append;
mod codec;
mod connect;
mod db;
mod error;
mod log;
mod meta;
mod offsets;
mod options;
mod record_sink;
mod schema;
mod sql;
mod state;
mod text;
mod tls;

#[cfg(test)]
mod testdb;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use skiff_storage::{Result, Storage, StorageError};
use tokio_postgres::types::Type;
use tracing::warn;

pub use crate::connect::Connector;
use crate::connect::PreferConnect;
use crate::error::pool_error;
use crate::options::Options;

/// Opens the database a `postgres://` or `postgresql://` URL names. No connection is made here:
/// the schema is created or migrated by a background task started now (when called inside a
/// tokio runtime) or by the first operation.
pub fn open(storage_url: &str) -> Result<Storage> {
    let engine = Arc::new(PostgresEngine::new(storage_url)?);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let warm = Arc::clone(&engine);
        runtime.spawn(async move {
            if let Err(error) = warm.client().await {
                warn!(%error, "postgres storage not ready yet; will retry on first use");
            }
        });
    }
    Ok(engine.into_storage())
}

/// A pool of connections to one database.
pub(crate) struct PostgresEngine {
    pool: Pool,
    /// Set once the schema is known to be current: `skiff.records`' column types for COPY.
    record_columns: OnceLock<Vec<Type>>,
    /// How long one storage call may take (the URL's `operation_timeout`).
    operation_timeout: Option<Duration>,
    /// Tests drop their database exactly when the engine goes (dropped last).
    #[cfg(test)]
    test_database: Option<testdb::TestDatabase>,
}

impl PostgresEngine {
    fn new(storage_url: &str) -> Result<Self> {
        let options = Options::parse(storage_url)?;
        let connect = PreferConnect::new(&options)?;
        let manager = Manager::from_connect(
            options.postgres,
            connect,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let operation_timeout = options.operation_timeout;
        let pool = Pool::builder(manager).max_size(options.pool_size).build().map_err(|error| {
            StorageError::InvalidArgument(format!("postgres connection pool: {error}"))
        })?;
        Ok(Self {
            pool,
            record_columns: OnceLock::new(),
            operation_timeout,
            #[cfg(test)]
            test_database: None,
        })
    }

    /// The engine seen through its concerns (`Storage::from_engine` would hide the `Arc` that
    /// `open`'s background task shares).
    fn into_storage(self: Arc<Self>) -> Storage {
        Storage { meta: self.clone(), log: self.clone(), state: self.clone(), offsets: self }
    }

    /// A pooled connection to a database whose schema is current.
    async fn client(&self) -> Result<Object> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        if self.record_columns.get().is_none() {
            schema::migrate(&mut client).await?;
            let columns = schema::record_columns(&client).await?;
            let _ = self.record_columns.set(columns);
        }
        Ok(client)
    }

    /// Runs one storage call within the engine's time limit: past it the call is given up
    /// (dropping its future rolls its transaction back) and answered `Unavailable`, so a
    /// connection that stopped answering costs a client one retriable error, never a request
    /// that hangs. Bulk calls whose time grows with the data (deleting a topic's rows, removing
    /// records) are not limited: a retry would only do the same work again.
    async fn limited<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(limit) = self.operation_timeout else { return work.await };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => {
                warn!(operation, limit_ms = limit.as_millis(), "postgres call timed out");
                Err(StorageError::Unavailable(format!(
                    "postgres: {operation} took longer than {} ms",
                    limit.as_millis()
                )))
            }
        }
    }

    /// `skiff.records`' column types (known once `client` has succeeded).
    fn record_columns(&self) -> Result<&[Type]> {
        self.record_columns
            .get()
            .map(Vec::as_slice)
            .ok_or_else(|| StorageError::Unavailable("postgres schema not checked yet".into()))
    }
}

#[cfg(test)]
mod conformance {
    skiff_storage::conformance_tests!(crate::testdb::fresh_storage());
}
