//! The four storage traits, each call forwarded through a [`Faults`] plan under its
//! [`Operation`]. Every method is forwarded, default ones included, so an engine's own
//! implementation (e.g. a faster `topic_by_id`) is the one that runs.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use super::{Faults, Operation, Outcome};
use crate::{
    AbortedTransaction, AppendResult, Batch, CommittedOffset, ConfigChange, LogStore, MetaStore,
    OffsetStore, ProducerSnapshot, QueuedAppend, ReadResult, Result, StateStore, Storage,
    TimestampOffset, TopicMeta, TopicPartition, TopicSpec, Versioned, Watermarks,
};

/// Wraps each store of `storage`; all share one plan.
pub(super) fn wrap(storage: Storage, faults: Faults) -> Storage {
    Storage {
        meta: Arc::new(Faulty { inner: storage.meta, faults: faults.clone() }),
        log: Arc::new(Faulty { inner: storage.log, faults: faults.clone() }),
        state: Arc::new(Faulty { inner: storage.state, faults: faults.clone() }),
        offsets: Arc::new(Faulty { inner: storage.offsets, faults }),
    }
}

/// One storage trait object under a fault plan.
struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    faults: Faults,
}

#[async_trait]
impl MetaStore for Faulty<dyn MetaStore> {
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicMeta> {
        self.faults.run(Operation::CreateTopic, self.inner.create_topic(spec)).await
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        self.faults.run(Operation::DeleteTopic, self.inner.delete_topic(name)).await
    }

    async fn topics(&self) -> Result<Vec<TopicMeta>> {
        self.faults.run(Operation::Topics, self.inner.topics()).await
    }

    async fn topic(&self, name: &str) -> Result<Option<TopicMeta>> {
        self.faults.run(Operation::Topic, self.inner.topic(name)).await
    }

    async fn topic_by_id(&self, id: Uuid) -> Result<Option<TopicMeta>> {
        self.faults.run(Operation::TopicById, self.inner.topic_by_id(id)).await
    }

    async fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        let call = self.inner.create_partitions(name, count);
        self.faults.run(Operation::CreatePartitions, call).await
    }

    async fn alter_configs(
        &self,
        name: &str,
        changes: Vec<ConfigChange>,
        replace_all: bool,
    ) -> Result<TopicMeta> {
        let call = self.inner.alter_configs(name, changes, replace_all);
        self.faults.run(Operation::AlterConfigs, call).await
    }
}

#[async_trait]
impl LogStore for Faulty<dyn LogStore> {
    async fn append(
        &self,
        partition: &TopicPartition,
        batches: Vec<Batch>,
    ) -> Result<AppendResult> {
        self.faults.run(Operation::Append, self.inner.append(partition, batches)).await
    }

    async fn queue_append(&self, partition: &TopicPartition, batches: Vec<Batch>) -> QueuedAppend {
        // Decided before queueing, as for `append`: an error before it queues nothing.
        let outcome = self.faults.plan_call(Operation::Append).await;
        let queued = if outcome == Outcome::ErrorBefore {
            Box::pin(std::future::pending())
        } else {
            self.inner.queue_append(partition, batches).await
        };
        let faults = self.faults.clone();
        Box::pin(async move { faults.apply(Operation::Append, outcome, queued).await })
    }

    async fn read(
        &self,
        partition: &TopicPartition,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.faults.run(Operation::Read, self.inner.read(partition, offset, max_bytes)).await
    }

    async fn watermarks(&self, partition: &TopicPartition) -> Result<Watermarks> {
        self.faults.run(Operation::Watermarks, self.inner.watermarks(partition)).await
    }

    async fn offset_for_time(
        &self,
        partition: &TopicPartition,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let call = self.inner.offset_for_time(partition, timestamp);
        self.faults.run(Operation::OffsetForTime, call).await
    }

    async fn max_timestamp(&self, partition: &TopicPartition) -> Result<Option<TimestampOffset>> {
        self.faults.run(Operation::MaxTimestamp, self.inner.max_timestamp(partition)).await
    }

    async fn aborted_transactions(
        &self,
        partition: &TopicPartition,
        from: i64,
        to: i64,
    ) -> Result<Vec<AbortedTransaction>> {
        let call = self.inner.aborted_transactions(partition, from, to);
        self.faults.run(Operation::AbortedTransactions, call).await
    }

    async fn batch_sizes(&self, partition: &TopicPartition) -> Result<Vec<(i64, u64)>> {
        self.faults.run(Operation::BatchSizes, self.inner.batch_sizes(partition)).await
    }

    async fn producers(&self, partition: &TopicPartition) -> Result<Vec<ProducerSnapshot>> {
        self.faults.run(Operation::Producers, self.inner.producers(partition)).await
    }

    async fn delete_records(&self, partition: &TopicPartition, before: i64) -> Result<i64> {
        let call = self.inner.delete_records(partition, before);
        self.faults.run(Operation::DeleteRecords, call).await
    }

    async fn remove_records(&self, partition: &TopicPartition, offsets: &[i64]) -> Result<u64> {
        let call = self.inner.remove_records(partition, offsets);
        self.faults.run(Operation::RemoveRecords, call).await
    }
}

#[async_trait]
impl StateStore for Faulty<dyn StateStore> {
    async fn get(&self, key: &str) -> Result<Option<Versioned>> {
        self.faults.run(Operation::StateGet, self.inner.get(key)).await
    }

    async fn put(&self, key: &str, value: Bytes, expected: Option<u64>) -> Result<u64> {
        self.faults.run(Operation::StatePut, self.inner.put(key, value, expected)).await
    }

    async fn delete(&self, key: &str, expected: u64) -> Result<()> {
        self.faults.run(Operation::StateDelete, self.inner.delete(key, expected)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Versioned)>> {
        self.faults.run(Operation::StateList, self.inner.list(prefix)).await
    }
}

#[async_trait]
impl OffsetStore for Faulty<dyn OffsetStore> {
    async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Result<()> {
        let call = self.inner.commit_offsets(group, offsets);
        self.faults.run(Operation::CommitOffsets, call).await
    }

    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>> {
        let call = self.inner.committed_offsets(group, partitions);
        self.faults.run(Operation::CommittedOffsets, call).await
    }

    async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<()> {
        let call = self.inner.delete_offsets(group, partitions);
        self.faults.run(Operation::DeleteOffsets, call).await
    }

    async fn offset_groups(&self) -> Result<Vec<String>> {
        self.faults.run(Operation::OffsetGroups, self.inner.offset_groups()).await
    }
}
