//! Measures appends per second through the sqlite engine (group commit at work).
//!
//! `cargo run --release -p skiff-storage-sqlite --example append_throughput -- \
//!     [producers] [records_per_batch] [value_bytes] [seconds] [query] [brokers]`
//!
//! Each producer task appends one batch at a time to its own partition (as independent produce
//! requests would) and waits for the acknowledgement before sending the next. With `brokers` > 1
//! the producers are spread over that many engines opened on the same file, as brokers sharing
//! one database would be.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::records::Compression;
use skiff_storage::testsuite::batch_with;
use skiff_storage::{TopicPartition, TopicSpec};

fn arg<T: std::str::FromStr>(index: usize, default: T) -> T {
    std::env::args().nth(index).and_then(|value| value.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let producers: i32 = arg(1, 16);
    let records: usize = arg(2, 10);
    let value_bytes: usize = arg(3, 100);
    let seconds: u64 = arg(4, 5);
    let query: String = arg(5, String::new());
    let brokers: usize = arg(6, 1).max(1);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let engines = (0..brokers)
        .map(|_| skiff_storage_sqlite::open(&path, &query))
        .collect::<Result<Vec<_>, _>>()?;
    let storage = &engines[0];
    let spec = TopicSpec { name: "bench".into(), partitions: producers, configs: BTreeMap::new() };
    storage.meta.create_topic(spec).await?;

    let value = "x".repeat(value_bytes);
    let values: Vec<&str> = (0..records).map(|_| value.as_str()).collect();
    let timestamps: Vec<i64> = (0..records as i64).collect();
    let batch = batch_with(&values, &timestamps, Compression::None);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (partition, storage) in (0..producers).zip(engines.iter().cycle()) {
        let (storage, batch) = (storage.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            let partition = TopicPartition::new("bench", partition);
            let mut appends = 0u64;
            while Instant::now() < deadline {
                storage.log.append(&partition, vec![batch.clone()]).await?;
                appends += 1;
            }
            anyhow::Ok(appends)
        }));
    }
    let mut appends = 0;
    for task in tasks {
        appends += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let appends_per_second = appends as f64 / elapsed;
    println!(
        "producers={producers} brokers={brokers} records/batch={records} value={value_bytes}B \
         query={query:?}: \
         {appends_per_second:.0} appends/s, {:.0} records/s, {:.1} MB/s",
        appends_per_second * records as f64,
        appends_per_second * batch.bytes.len() as f64 / 1e6
    );
    Ok(())
}
