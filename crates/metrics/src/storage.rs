//! A storage decorator that times every call of every storage trait and counts its errors, by
//! engine and operation: one decorator over `Storage` rather than code in each engine.
//!
//! `Conflict` and `NotFound` are counted too: they are normal outcomes (a lost compare-and-set,
//! a missing key), but a sudden rise in them says something (brokers fighting over one group,
//! clients asking for deleted topics).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use skiff_storage::{
    AbortedTransaction, AppendResult, Batch, CommittedOffset, ConfigChange, LogStore, MetaStore,
    OffsetStore, ProducerSnapshot, QueuedAppend, ReadResult, Result, StateStore, Storage,
    StorageError, TimestampOffset, TopicMeta, TopicPartition, TopicSpec, Versioned, Watermarks,
};
use uuid::Uuid;

use crate::Metrics;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    engine: &'static str,
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    engine: &'static str,
    operation: &'static str,
    kind: &'static str,
}

/// Storage call durations: 50 µs doubling up to ~1.6 s (an S3 request takes tens of ms).
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

#[derive(Clone)]
pub(crate) struct StorageMetrics {
    duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
}

impl StorageMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            duration: Family::new_with_constructor(duration_histogram),
            errors: Family::default(),
        };
        registry.register_with_unit(
            "storage_operation_duration",
            "Time of storage calls, by engine and operation (trait.method)",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        registry.register(
            "storage_errors",
            "Storage calls that failed, by engine, operation and kind of error",
            metrics.errors.clone(),
        );
        metrics
    }
}

/// `storage` with every call timed and every error counted under `engine` (`memory`,
/// `sqlite`, `postgres`, `s3`).
pub fn metered(storage: Storage, engine: &'static str, metrics: &Metrics) -> Storage {
    let meter = Meter { metrics: metrics.storage.clone(), engine };
    Storage {
        meta: Arc::new(Metered { inner: storage.meta, meter: meter.clone() }),
        log: Arc::new(Metered { inner: storage.log, meter: meter.clone() }),
        state: Arc::new(Metered { inner: storage.state, meter: meter.clone() }),
        offsets: Arc::new(Metered { inner: storage.offsets, meter }),
    }
}

#[derive(Clone)]
struct Meter {
    metrics: StorageMetrics,
    engine: &'static str,
}

impl Meter {
    async fn time<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.time_since(operation, Instant::now(), call).await
    }

    /// [`Meter::time`] for a call that began at `started`.
    async fn time_since<T>(
        &self,
        operation: &'static str,
        started: Instant,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = call.await;
        let labels = OperationLabels { engine: self.engine, operation };
        self.metrics.duration.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            let kind = error_kind(error);
            let labels = ErrorLabels { engine: self.engine, operation, kind };
            self.metrics.errors.get_or_create(&labels).inc();
        }
        result
    }
}

/// The label of an error: its variant, in snake case.
fn error_kind(error: &StorageError) -> &'static str {
    match error {
        StorageError::NotFound(_) => "not_found",
        StorageError::AlreadyExists(_) => "already_exists",
        StorageError::Conflict(_) => "conflict",
        StorageError::InvalidArgument(_) => "invalid_argument",
        StorageError::OffsetOutOfRange { .. } => "offset_out_of_range",
        StorageError::Fenced(_) => "fenced",
        StorageError::OutOfOrderSequence(_) => "out_of_order_sequence",
        StorageError::Unavailable(_) => "unavailable",
        StorageError::Corrupt(_) => "corrupt",
        _ => "other",
    }
}

/// One storage trait object, metered.
struct Metered<T: ?Sized> {
    inner: Arc<T>,
    meter: Meter,
}

#[async_trait]
impl MetaStore for Metered<dyn MetaStore> {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        self.meter.time("meta.create_topic", self.inner.create_topic(spec)).await
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        self.meter.time("meta.delete_topic", self.inner.delete_topic(name)).await
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.meter.time("meta.topics", self.inner.topics()).await
    }

    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        self.meter.time("meta.topic", self.inner.topic(name)).await
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        self.meter.time("meta.topic_by_id", self.inner.topic_by_id(id)).await
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        self.meter.time("meta.create_partitions", self.inner.create_partitions(name, count)).await
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        let call = self.inner.alter_configs(name, changes, replace_all);
        self.meter.time("meta.alter_configs", call).await
    }
}

#[async_trait]
impl LogStore for Metered<dyn LogStore> {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        self.meter.time("log.append", self.inner.append(partition, batches)).await
    }

    async fn queue_append(&self, partition: &TopicPartition, batches: Vec<Batch>) -> QueuedAppend {
        // Timed from the queueing to the outcome, like `append`.
        let meter = self.meter.clone();
        let started = Instant::now();
        let queued = self.inner.queue_append(partition, batches).await;
        Box::pin(async move { meter.time_since("log.append", started, queued).await })
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.meter.time("log.read", self.inner.read(partition, offset, max_bytes)).await
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        self.meter.time("log.watermarks", self.inner.watermarks(partition)).await
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let call = self.inner.offset_for_time(partition, timestamp);
        self.meter.time("log.offset_for_time", call).await
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        self.meter.time("log.max_timestamp", self.inner.max_timestamp(partition)).await
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        let call = self.inner.aborted_transactions(partition, from, to);
        self.meter.time("log.aborted_transactions", call).await
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        self.meter.time("log.batch_sizes", self.inner.batch_sizes(partition)).await
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        self.meter.time("log.producers", self.inner.producers(partition)).await
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        self.meter.time("log.delete_records", self.inner.delete_records(partition, before)).await
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        self.meter.time("log.remove_records", self.inner.remove_records(partition, offsets)).await
    }
}

#[async_trait]
impl StateStore for Metered<dyn StateStore> {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.meter.time("state.get", self.inner.get(key)).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        self.meter.time("state.put", self.inner.put(key, value, expected)).await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        self.meter.time("state.delete", self.inner.delete(key, expected)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.meter.time("state.list", self.inner.list(prefix)).await
    }
}

#[async_trait]
impl OffsetStore for Metered<dyn OffsetStore> {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        self.meter.time("offsets.commit_offsets", self.inner.commit_offsets(group, offsets)).await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        let call = self.inner.committed_offsets(group, partitions);
        self.meter.time("offsets.committed_offsets", call).await
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        let call = self.inner.delete_offsets(group, partitions);
        self.meter.time("offsets.delete_offsets", call).await
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        self.meter.time("offsets.offset_groups", self.inner.offset_groups()).await
    }
}
