//! Measures appends and records per second through the postgres engine alone, then one full
//! read of what was written.
//!
//! `cargo run --release -p skiff-storage-postgres --example postgres_append_throughput -- \
//!     [producers] [records_per_batch] [value_bytes] [seconds] [brokers] [url]`
//!
//! `url` (default `$SKIFF_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a database whose `skiff` schema is dropped first: use a scratch database. Each producer
//! task appends one batch at a time to its own partition and waits for the acknowledgement; with
//! `brokers` > 1 the producers are spread over that many engines (pools) on the same database.

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
    let records: usize = arg(2, 100);
    let value_bytes: usize = arg(3, 100);
    let seconds: u64 = arg(4, 5);
    let brokers: usize = arg(5, 1).max(1);
    let default_url = std::env::var("SKIFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url: String = arg(6, default_url);

    let engines =
        (0..brokers).map(|_| skiff_storage_postgres::open(&url)).collect::<Result<Vec<_>, _>>()?;
    let storage = &engines[0];
    if storage.meta.topic("bench").await?.is_some() {
        storage.meta.delete_topic("bench").await?;
    }
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
    let per_second = appends as f64 / elapsed;
    println!(
        "producers={producers} brokers={brokers} records/batch={records} value={value_bytes}B: \
         {per_second:.0} appends/s, {:.0} records/s, {:.1} MB/s",
        per_second * records as f64,
        per_second * batch.bytes.len() as f64 / 1e6
    );

    let partition = TopicPartition::new("bench", 0);
    let started = Instant::now();
    let (mut offset, mut read_records) = (0, 0usize);
    loop {
        let read = storage.log.read(&partition, offset, 1 << 20).await?;
        if read.batches.is_empty() {
            break;
        }
        read_records += read.batches.len() * records;
        offset += (read.batches.len() * records) as i64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "read partition 0 in 1 MiB fetches: {read_records} records, {:.0} records/s",
        read_records as f64 / elapsed
    );
    Ok(())
}
