//! Where an append's records go: one binary `COPY ... FROM STDIN` per append.
//!
//! The build with feature `bench-insert` (used only by `bench/postgres_copy_vs_insert.sh`) swaps
//! in one prepared INSERT per record instead, so the benchmark can compare the two through the
//! whole broker with nothing else changed. No shipped binary has that path.

use deadpool_postgres::Transaction;
use skiff_storage::Result;
use tokio_postgres::types::{ToSql, Type};

use crate::error::db_error;
use crate::sql;

/// One record row: topic, partition, offset, timestamp, key, value, headers.
pub(crate) type RecordRow<'a> = [&'a (dyn ToSql + Sync); 7];

/// Streams rows into `skiff.records` with binary COPY.
#[cfg(not(feature = "bench-insert"))]
pub(crate) struct RecordSink<'a> {
    writer: std::pin::Pin<Box<tokio_postgres::binary_copy::BinaryCopyInWriter>>,
    _tx: std::marker::PhantomData<&'a ()>,
}

#[cfg(not(feature = "bench-insert"))]
impl<'a> RecordSink<'a> {
    pub(crate) async fn open(tx: &'a Transaction<'a>, columns: &[Type]) -> Result<Self> {
        let copy = tx.prepare_cached(sql::LOG_RECORDS_COPY).await.map_err(db_error)?;
        let sink = tx.copy_in(&copy).await.map_err(db_error)?;
        let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, columns);
        Ok(Self { writer: Box::pin(writer), _tx: std::marker::PhantomData })
    }

    pub(crate) async fn write(&mut self, row: &RecordRow<'_>) -> Result<()> {
        self.writer.as_mut().write(row).await.map_err(db_error)
    }

    pub(crate) async fn finish(mut self) -> Result<()> {
        self.writer.as_mut().finish().await.map(|_| ()).map_err(db_error)
    }
}

/// The benchmark's comparison path: one prepared INSERT per record.
#[cfg(feature = "bench-insert")]
pub(crate) struct RecordSink<'a> {
    tx: &'a Transaction<'a>,
    insert: tokio_postgres::Statement,
}

#[cfg(feature = "bench-insert")]
impl<'a> RecordSink<'a> {
    pub(crate) async fn open(tx: &'a Transaction<'a>, _columns: &[Type]) -> Result<Self> {
        let insert = tx.prepare_cached(sql::LOG_RECORDS_INSERT_BENCH).await.map_err(db_error)?;
        Ok(Self { tx, insert })
    }

    pub(crate) async fn write(&mut self, row: &RecordRow<'_>) -> Result<()> {
        self.tx.execute(&self.insert, row).await.map(|_| ()).map_err(db_error)
    }

    pub(crate) async fn finish(self) -> Result<()> {
        Ok(())
    }
}
