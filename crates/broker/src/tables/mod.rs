//! Table writers: topics with `skiff.table.format` written by the broker itself as tables
//! (`docs/tables.md`), exactly once, with no connector.
//!
//! Every broker runs [`run`]. Every few seconds it lists the topics that ask for a table and
//! tries to take (or renew) each partition's writer lease in storage; for each partition it
//! holds, a [`writer::PartitionWriter`] reads the log and commits rows to the table at every
//! tick. A broker that dies loses its leases within one lease time and another broker resumes
//! from what the table says was committed. Writers never block produce: they run in their own
//! task, read what is stored, and retry failures with backoff.
//!
//! - `config`: the `skiff.table.*` topic configs and the checks at create and alter time.
//! - `writer`: one partition's read-buffer-commit loop.
//! - `status`: what writers report in storage, read by `skiff table status`.

pub(crate) mod config;
mod status;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use skiff_sink::table::{Location, ParquetTable, Table};
use skiff_sink::SinkError;
use skiff_storage::{StorageError, TopicMeta, TopicPartition};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::transactions::now_ms;
use crate::Broker;
use config::{Format, TableConfig};
use writer::PartitionWriter;

pub use status::{table_status, PartitionReport, PartitionStatus};

/// What this broker knows it should write: a partition's table, for the topic incarnation
/// (`topic_id`) whose configs ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    topic_id: String,
    config: TableConfig,
}

/// Runs table writers for the partitions whose leases this broker holds, until `stop`.
pub(crate) async fn run(broker: Broker, mut stop: watch::Receiver<bool>) {
    let holder = uuid::Uuid::new_v4().simple().to_string();
    let tick = broker.config.table_check_interval;
    let ttl = broker.config.table_lease;
    let mut writers: BTreeMap<TopicPartition, PartitionWriter> = BTreeMap::new();
    let mut opened = Opened::default();
    let mut next_round = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => break,
        }
        if Instant::now() >= next_round {
            next_round = Instant::now() + ttl / 3;
            if let Err(error) = take_leases(&broker, &holder, ttl, &mut writers, &mut opened).await
            {
                warn!(%error, "table writer leases not renewed");
            }
        }
        futures::future::join_all(writers.values_mut().map(|writer| writer.step(&broker))).await;
    }
    // Let another broker take over at once rather than when the leases run out.
    for partition in writers.keys() {
        let key = status::lease_key(partition);
        let state = broker.storage.state.as_ref();
        let _ = skiff_storage::lease::take(state, &key, &holder, now_ms(), Duration::ZERO).await;
    }
}

/// The partitions whose topics ask for a table.
async fn wanted(broker: &Broker) -> Result<BTreeMap<TopicPartition, Wanted>, StorageError> {
    let mut wanted = BTreeMap::new();
    for topic in broker.storage.meta.topics().await? {
        let Some(table) = table_of(broker, &topic) else { continue };
        for index in 0..topic.partitions {
            wanted.insert(TopicPartition::new(topic.name.clone(), index), table.clone());
        }
    }
    Ok(wanted)
}

fn table_of(broker: &Broker, topic: &TopicMeta) -> Option<Wanted> {
    let default_location = broker.config.table_location.as_deref();
    match TableConfig::of(&topic.configs, default_location) {
        Ok(Some(config)) => Some(Wanted { topic_id: topic.id.to_string(), config }),
        Ok(None) => None,
        Err(message) => {
            debug!(topic = %topic.name, message, "table configs unusable on this broker");
            None
        }
    }
}

/// Takes or renews the lease of every wanted partition; starts writers for leases won and
/// stops those whose lease was lost or whose table is no longer wanted.
async fn take_leases(
    broker: &Broker,
    holder: &str,
    ttl: Duration,
    writers: &mut BTreeMap<TopicPartition, PartitionWriter>,
    opened: &mut Opened,
) -> Result<(), StorageError> {
    let wanted = wanted(broker).await?;
    writers.retain(|partition, writer| {
        wanted.get(partition).is_some_and(|want| want.config == writer.config)
    });
    for (partition, want) in wanted {
        let key = status::lease_key(&partition);
        let state = broker.storage.state.as_ref();
        match skiff_storage::lease::take(state, &key, holder, now_ms(), ttl).await {
            Ok(true) if writers.contains_key(&partition) => {}
            Ok(true) => {
                let table = match open_table(broker, &want.config, &partition.topic, opened) {
                    Ok(table) => table,
                    Err(error) => {
                        unusable_location(broker, &partition, &error.to_string()).await;
                        continue; // tried again at the next lease round
                    }
                };
                info!(%partition, location = %want.config.location, "table writer starts");
                let writer =
                    PartitionWriter::new(partition.clone(), want.topic_id, want.config, table);
                writers.insert(partition, writer);
            }
            Ok(false) => {
                if writers.remove(&partition).is_some() {
                    info!(%partition, "table writer lease lost to another broker");
                }
            }
            Err(error) => warn!(%partition, %error, "table writer lease unavailable"),
        }
    }
    Ok(())
}

/// What table writers opened once and share: locations (one object store client each) and
/// the Iceberg catalog (one database connection).
#[derive(Default)]
struct Opened {
    locations: HashMap<String, Location>,
    #[cfg(feature = "iceberg")]
    catalog: Option<skiff_sink_iceberg::CatalogConfig>,
}

impl Opened {
    fn location(&mut self, url: &str) -> Result<Location, SinkError> {
        if let Some(location) = self.locations.get(url) {
            return Ok(location.clone());
        }
        let location = Location::open(url)?;
        self.locations.insert(url.to_owned(), location.clone());
        Ok(location)
    }

    /// The broker's Iceberg catalog (`--iceberg-catalog`).
    #[cfg(feature = "iceberg")]
    fn catalog(&mut self, broker: &Broker) -> Result<skiff_sink_iceberg::CatalogConfig, SinkError> {
        if let Some(catalog) = &self.catalog {
            return Ok(catalog.clone());
        }
        let Some(url) = broker.config.iceberg_catalog.as_deref() else {
            return Err(SinkError::Location(
                "no Iceberg catalog: start with --iceberg-catalog".into(),
            ));
        };
        let catalog = skiff_sink_iceberg::CatalogConfig::parse(url)?;
        self.catalog = Some(catalog.clone());
        Ok(catalog)
    }
}

/// The table of `topic` at the configured location.
fn open_table(
    broker: &Broker,
    config: &TableConfig,
    topic: &str,
    opened: &mut Opened,
) -> Result<Arc<dyn Table>, SinkError> {
    let location = opened.location(&config.location)?;
    match config.format {
        Format::Parquet => Ok(Arc::new(ParquetTable::new(location, topic))),
        #[cfg(feature = "delta")]
        Format::Delta => {
            let table = skiff_sink_delta::DeltaLakeTable::new(&location, topic)?
                .partitioned_by(config.partition_by.clone());
            Ok(Arc::new(table))
        }
        #[cfg(not(feature = "delta"))]
        Format::Delta => Err(SinkError::Location("this build has no Delta Lake support".into())),
        #[cfg(feature = "iceberg")]
        Format::Iceberg => {
            let catalog = opened.catalog(broker)?;
            let table = skiff_sink_iceberg::IcebergTable::new(&location, &catalog, topic)?
                .partitioned_by(config.partition_by.clone());
            Ok(Arc::new(table))
        }
        #[cfg(not(feature = "iceberg"))]
        Format::Iceberg => {
            let _ = broker;
            Err(SinkError::Location("this build has no Apache Iceberg support".into()))
        }
    }
}

/// A location this broker cannot open (a directory it may not create, an S3 client it cannot
/// build): logged, counted, and shown in the partition's status where operators look.
async fn unusable_location(broker: &Broker, partition: &TopicPartition, message: &str) {
    warn!(%partition, error = message, "table location unusable");
    if let Some(metrics) = broker.metrics() {
        metrics.table_failed(&partition.topic);
    }
    let state = broker.storage.state.as_ref();
    let stored = status::StoredStatus::load(state, partition).await;
    let saved = match stored {
        Ok(mut stored) => {
            stored.status.failed(message.to_owned());
            stored.save(state, partition).await
        }
        Err(error) => Err(error),
    };
    if let Err(error) = saved {
        warn!(%partition, %error, "table status not stored");
    }
}

/// Checks an Iceberg catalog URL (the broker's `--iceberg-catalog`) without connecting.
#[cfg(feature = "iceberg")]
pub fn check_catalog(url: &str) -> Result<(), String> {
    skiff_sink_iceberg::CatalogConfig::parse(url).map(|_| ()).map_err(|error| error.to_string())
}

/// Checks an Iceberg catalog URL: this build has no Iceberg support.
#[cfg(not(feature = "iceberg"))]
pub fn check_catalog(url: &str) -> Result<(), String> {
    Err(format!("--iceberg-catalog {url}: this build has no Apache Iceberg support"))
}

/// Checks a table location URL (the broker's `--table-location`) without opening it.
pub fn check_location(url: &str) -> Result<(), String> {
    Location::check(url).map_err(|error| error.to_string())
}
