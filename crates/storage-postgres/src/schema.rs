//! Creating and migrating the `skiff` schema.
//!
//! Migrations run in one transaction that first takes a transaction-level advisory lock, so when
//! several brokers start on a fresh database at once, one applies them and the others, waiting on
//! the lock, then find nothing left to do. Each applied migration is recorded in
//! `skiff.schema_migrations`; a database newer than this build is refused rather than misread.

use deadpool_postgres::Object;
use skiff_storage::{Result, StorageError};
use tokio_postgres::types::Type;
use tracing::info;

use crate::error::db_error;
use crate::sql::{self, MIGRATIONS};

/// The advisory lock key of migrations (any constant; "skiff" in ASCII).
const MIGRATION_LOCK: i64 = 0x0073_6b69_6666;

/// The schema version this build writes.
pub(crate) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// Applies the migrations the database lacks; returns the versions applied.
pub(crate) async fn migrate(client: &mut Object) -> Result<Vec<i32>> {
    let tx = client.transaction().await.map_err(db_error)?;
    tx.execute(sql::SCHEMA_LOCK, &[&MIGRATION_LOCK]).await.map_err(db_error)?;
    tx.batch_execute(sql::SCHEMA_BOOTSTRAP).await.map_err(db_error)?;
    let current: i32 =
        tx.query_one(sql::SCHEMA_VERSION_CURRENT, &[]).await.map_err(db_error)?.get(0);
    if current > latest_version() {
        return Err(StorageError::InvalidArgument(format!(
            "postgres schema skiff is at version {current}, newer than this skiff supports ({}); \
             upgrade skiff",
            latest_version()
        )));
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > current) {
        tx.batch_execute(migration.sql).await.map_err(db_error)?;
        tx.execute(sql::SCHEMA_VERSION_RECORD, &[&migration.version, &migration.name])
            .await
            .map_err(db_error)?;
        info!(version = migration.version, name = migration.name, "applied postgres migration");
        applied.push(migration.version);
    }
    tx.commit().await.map_err(db_error)?;
    Ok(applied)
}

/// The column types of `skiff.records` in COPY order (the header type's oid is the database's).
pub(crate) async fn record_columns(client: &Object) -> Result<Vec<Type>> {
    let statement = client.prepare_cached(sql::LOG_RECORDS_COLUMNS).await.map_err(db_error)?;
    Ok(statement.columns().iter().map(|column| column.type_().clone()).collect())
}
