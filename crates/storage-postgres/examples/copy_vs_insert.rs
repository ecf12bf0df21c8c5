//! Records per second written the engine's way (binary COPY) against the same transactions
//! written with one INSERT per record, the way this benchmark alone keeps.
//!
//! `cargo run --release -p skiff-storage-postgres --example copy_vs_insert -- \
//!     [producers] [records_per_batch] [value_bytes] [seconds] [url]`
//!
//! Both write to the partition's rows in the same shape: lock the partition row, write the
//! records and the batch row, advance the high watermark, commit. `url` names a scratch database
//! (default `$SKIFF_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::records::Compression;
use skiff_storage::testsuite::batch_with;
use skiff_storage::{Storage, TopicPartition, TopicSpec};

const LOCK: &str =
    "SELECT high FROM skiff.partitions WHERE topic = $1 AND partition = $2 FOR UPDATE";
const INSERT_RECORD: &str =
    "INSERT INTO skiff.records (topic, partition, \"offset\", timestamp_ms, \
     key, value) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_BATCH: &str = "INSERT INTO skiff.batches (topic, partition, base_offset, last_offset, \
     attributes, producer_id, producer_epoch, base_sequence, leader_epoch, base_timestamp, \
     max_timestamp, record_count, size_bytes) VALUES ($1, $2, $3, $4, 0, -1, -1, -1, -1, 0, 0, $5, 0)";
const SET_HIGH: &str = "UPDATE skiff.partitions SET high = $3 WHERE topic = $1 AND partition = $2";

fn arg<T: std::str::FromStr>(index: usize, default: T) -> T {
    std::env::args().nth(index).and_then(|value| value.parse().ok()).unwrap_or(default)
}

async fn fresh_topic(storage: &Storage, name: &str, partitions: i32) -> anyhow::Result<()> {
    if storage.meta.topic(name).await?.is_some() {
        storage.meta.delete_topic(name).await?;
    }
    let spec = TopicSpec { name: name.into(), partitions, configs: BTreeMap::new() };
    storage.meta.create_topic(spec).await?;
    Ok(())
}

/// One producer's loop of INSERT transactions; returns the records written.
async fn insert_producer(
    url: String,
    topic: String,
    partition: i32,
    records: i32,
    value: Vec<u8>,
    deadline: Instant,
) -> anyhow::Result<u64> {
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let (lock, insert, batch, set_high) = (
        client.prepare(LOCK).await?,
        client.prepare(INSERT_RECORD).await?,
        client.prepare(INSERT_BATCH).await?,
        client.prepare(SET_HIGH).await?,
    );
    let mut written = 0u64;
    while Instant::now() < deadline {
        let tx = client.transaction().await?;
        let high: i64 = tx.query_one(&lock, &[&topic, &partition]).await?.get(0);
        for index in 0..records {
            let offset = high + i64::from(index);
            let key: Option<&[u8]> = None;
            tx.execute(&insert, &[&topic, &partition, &offset, &offset, &key, &value]).await?;
        }
        let last = high + i64::from(records) - 1;
        tx.execute(&batch, &[&topic, &partition, &high, &last, &records]).await?;
        tx.execute(&set_high, &[&topic, &partition, &(last + 1)]).await?;
        tx.commit().await?;
        written += records as u64;
    }
    Ok(written)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let producers: i32 = arg(1, 4);
    let records: usize = arg(2, 100);
    let value_bytes: usize = arg(3, 100);
    let seconds: u64 = arg(4, 5);
    let default_url = std::env::var("SKIFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url: String = arg(5, default_url);
    let storage = skiff_storage_postgres::open(&url)?;

    fresh_topic(&storage, "bench-copy", producers).await?;
    let value = "x".repeat(value_bytes);
    let values: Vec<&str> = (0..records).map(|_| value.as_str()).collect();
    let timestamps: Vec<i64> = (0..records as i64).collect();
    let batch = batch_with(&values, &timestamps, Compression::None);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for partition in 0..producers {
        let (storage, batch) = (storage.clone(), batch.clone());
        tasks.push(tokio::spawn(async move {
            let partition = TopicPartition::new("bench-copy", partition);
            let mut written = 0u64;
            while Instant::now() < deadline {
                storage.log.append(&partition, vec![batch.clone()]).await?;
                written += records as u64;
            }
            anyhow::Ok(written)
        }));
    }
    let mut copied = 0;
    for task in tasks {
        copied += task.await??;
    }
    let copy_rate = copied as f64 / started.elapsed().as_secs_f64();

    fresh_topic(&storage, "bench-insert", producers).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for partition in 0..producers {
        let value = value.clone().into_bytes();
        let task = insert_producer(
            url.clone(),
            "bench-insert".into(),
            partition,
            records as i32,
            value,
            deadline,
        );
        tasks.push(tokio::spawn(task));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await??;
    }
    let insert_rate = inserted as f64 / started.elapsed().as_secs_f64();
    println!(
        "producers={producers} records/batch={records} value={value_bytes}B: COPY {copy_rate:.0} \
         records/s, INSERT per record {insert_rate:.0} records/s ({:.1}x)",
        copy_rate / insert_rate
    );
    for topic in ["bench-copy", "bench-insert"] {
        storage.meta.delete_topic(topic).await?;
    }
    Ok(())
}
