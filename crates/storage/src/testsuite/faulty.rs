//! The suite's part under injected faults: every engine, wrapped with a [`Faults`] plan that
//! fails calls before they apply and loses replies of calls that did apply, must still let a
//! caller that retries end with each acknowledged write stored exactly once.
//!
//! The callers here retry the way the broker and clients do: an idempotent producer resends the
//! same batch (same producer id, epoch and sequences) until it is acknowledged; a
//! compare-and-set writer that got no answer re-reads and looks for its own write. Each case
//! also asserts that faults of both kinds were injected, so it cannot pass by luck.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::{create, producer_batch};
use crate::faults::{with_faults, FaultCounts, Faults, Operation};
use crate::{CommittedOffset, Storage, StorageError, TopicPartition};

/// Enough attempts that a call failing at these rates gets through (0.4^60 is never).
const ATTEMPTS: usize = 60;

/// Concurrent idempotent producers append through a plan that fails 20% of appends and loses
/// the reply of another 20%; each retries every batch until acknowledged. Afterwards the log
/// holds every batch once, at the offset its acknowledgement named, offsets contiguous.
pub async fn idempotent_appends_survive_faults(storage: &Storage) {
    const PRODUCERS: i64 = 3;
    const BATCHES: i32 = 12;
    create(storage, "faulty", 1).await;
    let faults = Faults::parse("append:error=0.2,append:lost=0.2,seed=11").expect("spec");
    let faulty = with_faults(storage.clone(), faults.clone());
    let mut tasks = Vec::new();
    for producer_id in 100..100 + PRODUCERS {
        let log = faulty.log.clone();
        tasks.push(tokio::spawn(async move {
            let partition = TopicPartition::new("faulty", 0);
            let mut acknowledged = Vec::new();
            let mut sequence = 0;
            for index in 0..BATCHES {
                let count = (index % 3 + 1) as usize;
                let batch = || producer_batch(producer_id, 0, sequence, count);
                let base = retry(|| log.append(&partition, vec![batch()])).await.base_offset;
                acknowledged.push((base, format!("p{producer_id}-{sequence}")));
                sequence += count as i32;
            }
            (producer_id, sequence, acknowledged)
        }));
    }
    let mut finished = Vec::new();
    for task in tasks {
        finished.push(task.await.expect("producer task"));
    }
    let partition = TopicPartition::new("faulty", 0);
    let read = storage.log.read(&partition, 0, usize::MAX).await.expect("read");
    let stored = records(&read.batches);
    let by_offset: BTreeMap<i64, &String> = stored.iter().map(|(o, v)| (*o, v)).collect();
    let mut expected_total = 0;
    for (producer_id, sequences, acknowledged) in finished {
        expected_total += sequences as usize;
        for (base, value) in &acknowledged {
            assert_eq!(by_offset.get(base), Some(&value), "acknowledged at {base}");
        }
        let mine: Vec<&String> =
            stored.iter().map(|(_, value)| value).filter(|v| is_of(v, producer_id)).collect();
        let wanted: Vec<String> = (0..sequences).map(|s| format!("p{producer_id}-{s}")).collect();
        assert_eq!(mine, wanted.iter().collect::<Vec<_>>(), "each record once, in order");
    }
    assert_eq!(stored.len(), expected_total, "nothing doubled");
    let offsets: Vec<i64> = stored.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, (0..expected_total as i64).collect::<Vec<_>>(), "contiguous");
    assert_both_kinds(faults.counts_for(Operation::Append));
}

/// Writers claim ids from one compare-and-set list through a plan that fails and loses 25% of
/// puts each and fails some reads: a writer that got no answer re-reads and finds whether its
/// claim landed. Every id ends claimed once, by the writer that believes it holds it.
pub async fn compare_and_set_survives_lost_replies(storage: &Storage) {
    const WRITERS: usize = 4;
    const CLAIMS_EACH: usize = 4;
    let spec = "state_put:error=0.25,state_put:lost=0.25,state_get:error=0.1,seed=5";
    let faults = Faults::parse(spec).expect("spec");
    let faulty = with_faults(storage.clone(), faults.clone());
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let faulty = faulty.clone();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            for nonce in 0..CLAIMS_EACH {
                held.push(claim(&faulty, &format!("w{writer}.{nonce}")).await);
            }
            (writer, held)
        }));
    }
    let mut believed = BTreeMap::new();
    for task in tasks {
        let (writer, held) = task.await.expect("writer task");
        for (nonce, position) in held.into_iter().enumerate() {
            believed.insert(position, format!("w{writer}.{nonce}"));
        }
    }
    let stored = storage.state.get("faulty/claims").await.expect("get").expect("exists");
    let claims = claims_of(&stored.value);
    assert_eq!(claims.len(), WRITERS * CLAIMS_EACH, "no claim lost or doubled: {claims:?}");
    let positions: BTreeMap<usize, String> = claims.into_iter().enumerate().collect();
    assert_eq!(positions, believed, "every writer holds exactly the ids it claimed");
    assert_both_kinds(faults.counts_for(Operation::StatePut));
}

/// Offset commits whose replies are lost are retried; the last commit of each partition is
/// what stays, as if no fault had happened.
pub async fn offset_commits_survive_lost_replies(storage: &Storage) {
    create(storage, "faulty", 2).await;
    let spec = "commit_offsets:error=0.3,commit_offsets:lost=0.3,committed_offsets:error=0.2";
    let faults = Faults::parse(&format!("{spec},seed=3")).expect("spec");
    let faulty = with_faults(storage.clone(), faults.clone());
    let committed = |offset: i64| CommittedOffset {
        offset,
        leader_epoch: 0,
        metadata: None,
        commit_timestamp_ms: 1_700_000_000_000,
    };
    for offset in 1..=20 {
        let partition = TopicPartition::new("faulty", (offset % 2) as i32);
        let commit = vec![(partition, committed(offset))];
        retry(|| faulty.offsets.commit_offsets("g", commit.clone())).await;
    }
    let stored = retry(|| faulty.offsets.committed_offsets("g", None)).await;
    assert_eq!(
        stored,
        vec![
            (TopicPartition::new("faulty", 0), committed(20)),
            (TopicPartition::new("faulty", 1), committed(19)),
        ]
    );
    assert_both_kinds(faults.counts_for(Operation::CommitOffsets));
}

/// Claims the next position of the list at `faulty/claims` for `claim`, retrying through
/// faults; returns the position.
async fn claim(faulty: &Storage, claim: &str) -> usize {
    let mut unsure = false;
    for _ in 0..ATTEMPTS {
        let current = match faulty.state.get("faulty/claims").await {
            Ok(current) => current,
            Err(StorageError::Unavailable(_)) => continue,
            Err(other) => panic!("unexpected {other:?}"),
        };
        let mut claims = current.as_ref().map(|c| claims_of(&c.value)).unwrap_or_default();
        if let Some(position) = claims.iter().position(|c| c == claim) {
            assert!(unsure, "{claim} found without a put that went unanswered");
            return position;
        }
        claims.push(claim.to_owned());
        let value = Bytes::from(claims.join(","));
        match faulty.state.put("faulty/claims", value, current.map(|c| c.version)).await {
            Ok(_) => return claims.len() - 1,
            // Another writer moved first, or our own unanswered put did: the re-read tells.
            Err(StorageError::Conflict(_)) => tokio::task::yield_now().await,
            Err(StorageError::Unavailable(_)) => unsure = true,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    panic!("{claim} not claimed in {ATTEMPTS} attempts")
}

/// Calls `call` until it answers, retrying `Unavailable` only.
async fn retry<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>>,
{
    for _ in 0..ATTEMPTS {
        match call().await {
            Ok(answer) => return answer,
            Err(StorageError::Unavailable(_)) => tokio::task::yield_now().await,
            Err(other) => panic!("only injected faults may fail: {other:?}"),
        }
    }
    panic!("no answer in {ATTEMPTS} attempts")
}

fn claims_of(value: &Bytes) -> Vec<String> {
    let text = String::from_utf8_lossy(value);
    text.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

fn is_of(value: &str, producer_id: i64) -> bool {
    value.split_once('-').is_some_and(|(producer, _)| producer == format!("p{producer_id}"))
}

/// (offset, value) of every record of `batches`.
fn records(batches: &[Bytes]) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    for batch in batches {
        let mut buf = batch.clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("stored batch decodes");
        for record in set.records {
            let value = record.value.map(|v| String::from_utf8_lossy(&v).into_owned());
            found.push((record.offset, value.unwrap_or_default()));
        }
    }
    found
}

fn assert_both_kinds(counts: FaultCounts) {
    // Shown with --no-capture: the numbers docs/reliability.md reports.
    eprintln!("faults injected: {counts:?}");
    assert!(counts.errors > 0, "no error was injected: {counts:?}");
    assert!(counts.lost > 0, "no reply was lost: {counts:?}");
}
