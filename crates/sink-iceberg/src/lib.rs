//! Apache Iceberg tables: a topic's commits as snapshots of an Iceberg table registered in a SQL
//! catalog, which pyiceberg, Spark, Trino, DuckDB's `iceberg` extension and Snowflake read,
//! exactly once.
//!
//! Its own crate because iceberg 0.10 brings its own arrow and parquet (58) and needs Rust
//! 1.94 (DESIGN 10.6): skiff-sink's arrow 60 types never reach it. A commit hands over the
//! bytes of a Parquet file skiff-sink wrote ([`skiff_sink::parquet::ParquetFile`]); this crate
//! decodes it with its own parquet, rewrites it with the table's field ids and Iceberg's
//! types ([`columns`](crate::columns)), uploads it and appends it in a snapshot.
//!
//! # Using it
//! ```no_run
//! # async fn example(file: &skiff_sink::parquet::ParquetFile) -> Result<(), skiff_sink::SinkError> {
//! use skiff_sink::table::{Commit, CommitOutcome, Location, Table};
//! use skiff_sink_iceberg::{CatalogConfig, IcebergTable};
//!
//! let location = Location::open("s3://lake/tables?endpoint=http://localhost:9000")?;
//! let catalog = CatalogConfig::parse("postgres://localhost/skiff")?;
//! let table = IcebergTable::new(&location, &catalog, "orders")?;
//! let from = table.committed(3).await?.map_or(0, |c| c.next_offset);
//! # let next = from + 10;
//! match table.commit(Commit { partition: 3, from, next, file }).await? {
//!     CommitOutcome::Committed => {}                  // continue from `next`
//!     CommitOutcome::Conflict => { /* another writer got there first: ask committed() */ }
//! }
//! # Ok(()) }
//! ```
//!
//! # Catalog
//! The catalog is a SQL database in the layout of Iceberg's JDBC catalog, the one pyiceberg's
//! `SqlCatalog` reads (`iceberg_tables`, `iceberg_namespace_properties`): the broker's own
//! SQLite file or Postgres database, or any other. A topic's table is `<namespace>.<topic>`
//! (namespace `skiff` unless the catalog URL's `?namespace=` says otherwise), filed under the
//! catalog name `skiff` (`?catalog=`). The namespace and the table are created by the first
//! commit, with the first file's columns.
//!
//! # Layout
//! ```text
//! <location>/<topic>/metadata/<version>-<uuid>.metadata.json   one per commit (iceberg writes it)
//! <location>/<topic>/metadata/snap-*.avro, *-m0.avro            manifest lists and manifests
//! <location>/<topic>/data/<partition>/<from, 20 digits>-<uuid>.parquet   one commit's rows
//! <location>/<topic>/data/<field>=<value>/.../<partition>/<from>-<uuid>.parquet   (partitioned)
//! ```
//!
//! # Exactly once
//! Each commit is one snapshot (a fast append of its file) that also sets the table property
//! `skiff.partition.<p>.next-offset` to the offset after the commit, in the same metadata
//! version. So the table says how far each partition is committed ([`Table::committed`]
//! reads the property), and a commit from `from` is made only if the property is still
//! `from` (none counts as 0) in the table version the snapshot builds on:
//!
//! - the catalog swaps the table's metadata pointer with one conditional `UPDATE ... WHERE
//!   metadata_location = <the version read>`, so of two writers only one moves the table from a
//!   given version;
//! - the commit is pinned to the version whose property was checked: iceberg's own rebasing and
//!   retrying on a newer version are turned off (they would append the file blindly), and the
//!   loser reads the table again here: if the property moved, another writer committed this
//!   partition ([`CommitOutcome::Conflict`]); if not (another partition's commit or a schema
//!   change), it tries again on the new version (up to 20 times, with a small random pause).
//!
//! A file whose commit lost stays under `data/` but is in no snapshot, so no reader sees it
//! (Iceberg's orphan file removal deletes such files).
//!
//! Each snapshot's summary also holds the commit (`skiff.partition`, `skiff.from_offset`,
//! `skiff.next_offset`, `skiff.topic_id`, `skiff.schema_id`, `skiff.committed_at_ms`).
//!
//! # Schema evolution
//! A file with columns the table lacks first adds them, optional, in a schema update of its own
//! (nested fields under their struct); older rows read them as null. A column whose type
//! changed is refused.
//!
//! # Partitioning
//! `skiff.table.partition.by` (`day(_timestamp)`, `region`, `bucket(16, id)`) becomes the
//! table's partition spec ([`partitions`](crate::partitions)): a commit's rows are split by
//! partition value with iceberg's own transforms, one data file per value, all in the
//! commit's one snapshot. A table whose default spec differs (the config changed) gets the new
//! spec as its default in a version of its own first; older files keep theirs.
//!
//! # Storage
//! Every file goes through the table location's object store ([`storage`](crate::storage)): the
//! S3 client of the `s3://` location (the `AWS_*` environment, `?endpoint=`), or the local
//! file system.

#![forbid(unsafe_code)]

mod catalog;
mod columns;
mod partitions;
mod storage;
mod table;

pub use catalog::{CatalogConfig, DEFAULT_CATALOG_NAME, DEFAULT_NAMESPACE};
pub use table::{file_name, next_offset_property, summary_property, IcebergTable};
