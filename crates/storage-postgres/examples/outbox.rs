//! The transactional outbox without an outbox table: an order is updated and its event enqueued
//! in ONE Postgres transaction with `skiff.produce`. Consumers (any Kafka client of a broker on
//! this database; here the engine's own read, which is what such a broker serves) see the event
//! exactly when the transaction commits; a rolled-back transaction leaves no event and no gap.
//!
//! `cargo run -p skiff-storage-postgres --example outbox -- [url]`
//!
//! `url` defaults to `$SKIFF_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`
//! (plain TCP is used for the application's own connection here).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use skiff_storage::{Storage, TopicPartition, TopicSpec};

async fn events(storage: &Storage, partition: &TopicPartition) -> anyhow::Result<Vec<String>> {
    let read = storage.log.read(partition, 0, usize::MAX).await?;
    let mut found = Vec::new();
    for batch in read.batches {
        let mut bytes: Bytes = batch;
        for record in RecordBatchDecoder::decode(&mut bytes)?.records {
            let value = record.value.unwrap_or_default();
            found.push(format!("{}: {}", record.offset, String::from_utf8_lossy(&value)));
        }
    }
    Ok(found)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let default_url = std::env::var("SKIFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = std::env::args().nth(1).unwrap_or(default_url);

    // What a broker does at start: open the engine (creating the skiff schema) and the topic.
    let storage = skiff_storage_postgres::open(&url)?;
    let topic = format!("order-events-{}", std::process::id());
    let spec = TopicSpec { name: topic.clone(), partitions: 1, configs: BTreeMap::new() };
    storage.meta.create_topic(spec).await?;
    let partition = TopicPartition::new(topic.clone(), 0);

    // The application: its own connection, its own table.
    let (mut app, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    app.batch_execute(
        "CREATE TABLE IF NOT EXISTS outbox_example_orders (id integer PRIMARY KEY, status text);
         INSERT INTO outbox_example_orders VALUES (42, 'new') ON CONFLICT (id) DO NOTHING",
    )
    .await?;

    let paid = app.transaction().await?;
    paid.execute("UPDATE outbox_example_orders SET status = 'paid' WHERE id = 42", &[]).await?;
    let offset: i64 = paid
        .query_one(
            "SELECT skiff.produce($1, 0, 'order-42', '{\"id\":42,\"status\":\"paid\"}')",
            &[&topic],
        )
        .await?
        .get(0);
    println!("enqueued at offset {offset}; before commit consumers see {:?}", {
        events(&storage, &partition).await?
    });
    paid.commit().await?;
    println!("after commit: {:?}", events(&storage, &partition).await?);

    let cancelled = app.transaction().await?;
    cancelled
        .execute("UPDATE outbox_example_orders SET status = 'void' WHERE id = 42", &[])
        .await?;
    cancelled.execute("SELECT skiff.produce($1, 0, 'order-42', 'void')", &[&topic]).await?;
    cancelled.rollback().await?;
    println!("after a rolled-back update: {:?}", events(&storage, &partition).await?);

    storage.meta.delete_topic(&topic).await?;
    app.batch_execute("DROP TABLE outbox_example_orders").await?;
    Ok(())
}
