//! Conformance cases of [`crate::LogStore::remove_records`], the storage half of compaction.

use kafka_protocol::records::Compression;
use skiff_protocol::batch::split_batches;

use super::{batch, batch_with, create, marker, record_offsets, transactional_batch};
use crate::{Storage, StorageError, TopicPartition, Watermarks};

async fn offsets_from(storage: &Storage, partition: &TopicPartition, offset: i64) -> Vec<i64> {
    let read = storage.log.read(partition, offset, usize::MAX).await.expect("read");
    record_offsets(&read.batches)
}

pub async fn removed_records_leave_the_rest_of_their_batch(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    let first = batch_with(&["a", "b", "c", "d"], &[10, 20, 30, 40], Compression::Lz4);
    storage.log.append(&partition, vec![first, batch(2)]).await.expect("append");
    let before = storage.log.watermarks(&partition).await.expect("marks");

    assert_eq!(storage.log.remove_records(&partition, &[1, 3]).await.expect("remove"), 2);

    assert_eq!(storage.log.watermarks(&partition).await.expect("marks"), before);
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(record_offsets(&read.batches), vec![0, 2, 4, 5]);
    let rewritten = split_batches(&read.batches[0]).expect("a valid batch").remove(0);
    assert_eq!(rewritten.header.base_offset, 0);
    assert_eq!(rewritten.header.last_offset_delta, 3, "the batch still ends where it ended");
    assert_eq!(rewritten.header.record_count, 2);
    assert_eq!(rewritten.header.compression(), 3, "still lz4");
    let records = skiff_protocol::records::decode(&rewritten).expect("decodes");
    let kept: Vec<_> = records
        .iter()
        .map(|record| (record.key.clone(), record.value.clone(), record.timestamp))
        .collect();
    assert_eq!(
        kept,
        vec![
            (Some("key-0".into()), Some("a".into()), 10),
            (Some("key-2".into()), Some("c".into()), 30)
        ]
    );
    // A fetch from a removed offset gets the batch around it.
    assert_eq!(offsets_from(storage, &partition, 3).await, vec![0, 2, 4, 5]);
}

pub async fn emptied_batches_disappear(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    for _ in 0..3 {
        storage.log.append(&partition, vec![batch(2)]).await.expect("append");
    }
    assert_eq!(storage.log.remove_records(&partition, &[2, 3]).await.expect("remove"), 2);
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    assert_eq!(read.batches.len(), 2);
    assert_eq!(record_offsets(&read.batches), vec![0, 1, 4, 5]);
    assert_eq!(offsets_from(storage, &partition, 2).await, vec![4, 5], "the gap is skipped");
    let sizes = storage.log.batch_sizes(&partition).await.expect("sizes");
    assert_eq!(sizes.iter().map(|(base, _)| *base).collect::<Vec<_>>(), vec![0, 4]);
    assert_eq!(
        storage.log.watermarks(&partition).await.expect("marks"),
        Watermarks { log_start: 0, high: 6, last_stable: 6 }
    );
    // Removing what is gone, or nothing, removes nothing.
    assert_eq!(storage.log.remove_records(&partition, &[2, 3]).await.expect("again"), 0);
    assert_eq!(storage.log.remove_records(&partition, &[]).await.expect("nothing"), 0);
    storage.log.delete_records(&partition, 1).await.expect("delete records");
    assert_eq!(storage.log.remove_records(&partition, &[0]).await.expect("below start"), 0);
}

pub async fn removal_stops_at_the_last_stable_offset(storage: &Storage) {
    create(storage, "t", 1).await;
    let partition = TopicPartition::new("t", 0);
    storage.log.append(&partition, vec![batch(2)]).await.expect("append");
    storage.log.append(&partition, vec![transactional_batch(7, 0, 0, 2)]).await.expect("txn");
    for offsets in [&[2][..], &[0, 2], &[9]] {
        let refused = storage.log.remove_records(&partition, offsets).await;
        assert!(matches!(refused, Err(StorageError::InvalidArgument(_))), "{offsets:?}");
    }
    assert_eq!(offsets_from(storage, &partition, 0).await, vec![0, 1, 2, 3], "nothing removed");

    storage.log.append(&partition, vec![marker(7, 0, true)]).await.expect("commit");
    assert_eq!(storage.log.remove_records(&partition, &[2]).await.expect("committed"), 1);
    assert_eq!(offsets_from(storage, &partition, 0).await, vec![0, 1, 3, 4]);
}
