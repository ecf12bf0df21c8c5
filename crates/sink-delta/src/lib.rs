//! Delta Lake tables: a topic's commits as versions of a Delta table that Spark, Trino, DuckDB's
//! `delta` extension, polars or the `deltalake` Python package read, exactly once.
//!
//! Its own crate because deltalake 1.1 brings its own arrow (59) and parquet, and needs Rust
//! 1.95 (DESIGN 10.6): skiff-sink's arrow 60 types never reach it. A commit hands over the
//! bytes of a Parquet file skiff-sink wrote ([`skiff_sink::parquet::ParquetFile`]); this crate
//! uploads them unchanged and reads their footer with deltalake's re-exported parquet for the
//! table schema, the row count and the statistics.
//!
//! # Using it
//! A table writer (in the broker) uses it as any [`skiff_sink::table::Table`]:
//! ```no_run
//! # async fn example(file: &skiff_sink::parquet::ParquetFile) -> Result<(), skiff_sink::SinkError> {
//! use skiff_sink::table::{Commit, CommitOutcome, Location, Table};
//! use skiff_sink_delta::DeltaLakeTable;
//!
//! let location = Location::open("s3://lake/tables?endpoint=http://localhost:9000")?;
//! let table = DeltaLakeTable::new(&location, "orders")?;
//! // Resume: where partition 3's last commit ended (0 if none).
//! let from = table.committed(3).await?.map_or(0, |c| c.next_offset);
//! // ... read offsets from..next of the log, write them with skiff_sink::parquet ...
//! # let next = from + 10;
//! match table.commit(Commit { partition: 3, from, next, file }).await? {
//!     CommitOutcome::Committed => {}                  // continue from `next`
//!     CommitOutcome::Conflict => { /* another writer got there first: ask committed() */ }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! ```text
//! <location>/<topic>/_delta_log/<version, 20 digits>.json       one version (deltalake writes it)
//! <location>/<topic>/_delta_log/_last_checkpoint, *.checkpoint.parquet   every 100 versions
//! <location>/<topic>/<partition>/<from, 20 digits>-<uuid>.parquet        one commit's rows
//! <location>/<topic>/<column>=<value>/.../<partition>/<from>-<uuid>.parquet   partitioned
//! ```
//! A table partitioned by `skiff.table.partition.by` ([`DeltaLakeTable::partitioned_by`], the
//! `partitions` module) gets one file per partition value per commit, all in the commit's
//! version, with the partition values in the Add actions rather than in the files.
//! The table is created at the first commit with the first file's columns (the Kafka columns,
//! then the value's). A file with new columns first merges them into the table schema, nullable
//! (a version of its own, deltalake's `add_columns`), so older rows read them as null.
//!
//! # Exactly once
//! Each commit is one Delta version holding an Add action for its file and a `txn` action with
//! app id `skiff-<topic>-<partition>` and version `next` (the offset after the commit). So the
//! table itself says how far each partition is committed ([`Table::committed`] reads the
//! latest version's `txn` for the app id), and a commit from `from` is made only if that
//! version is still `from` (none counts as 0):
//!
//! - checked against the snapshot the commit is built on, before anything is uploaded, so a
//!   stale writer learns it lost at once ([`CommitOutcome::Conflict`]);
//! - a version is a file created only if absent (`If-None-Match: *` on S3, an exclusive create
//!   on a file system), so two writers cannot both write version N; the loser's deltalake
//!   reads the versions it missed and its conflict checker fails the commit with
//!   `ConcurrentTransaction` when one of them carries a `txn` of the same app id: another
//!   writer committed this partition, so this is a `Conflict` too;
//! - commits of other partitions are blind appends with other app ids: deltalake retries on top
//!   of them (up to 15 times), and a schema change by another writer makes this crate try
//!   again from a fresh snapshot (up to 5 times), so partitions never block each other.
//!
//! A file whose commit lost stays in the partition's directory but is in no version, so no
//! Delta reader sees it (`VACUUM` removes such files once old enough).
//!
//! `committed_at_ms` is the Add action's `modificationTime` (set to the writer's commit time)
//! of the partition's newest file, and `topic_id` is read from that file's own key-value
//! metadata. The commit facts are also in each version's `commitInfo` (`skiff.topic`,
//! `skiff.topic_id`, `skiff.partition`, `skiff.from_offset`, `skiff.next_offset`) and the
//! `txn`'s `lastUpdated`.
//!
//! # Storage
//! An `s3://` location's object store instance is shared with deltalake (both use object_store
//! 0.13), so the table uses the same S3 client, credentials and endpoint as the `parquet`
//! format; deltalake's own S3 support (`deltalake-aws`, DynamoDB locking) is not built: commits
//! are safe through S3's conditional writes. A `file://` location gets a store of the whole
//! file system, because deltalake's kernel reads `file://` URLs as absolute paths.

#![forbid(unsafe_code)]

mod evolve;
mod file;
mod partitions;
mod store;
mod table;

pub use table::{app_id, file_path, DeltaLakeTable};
