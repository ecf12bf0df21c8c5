//! The `skiff.table.*` topic configs, parsed once into a [`TableConfig`], and the checks a
//! topic asking for a table must pass when it is created or altered.

use std::collections::BTreeMap;
use std::time::Duration;

use skiff_sink::table::{Location, PartitionBy};
use skiff_sink::TableSchema;

use crate::{topic_config, Broker};

pub(crate) const FORMAT: &str = "skiff.table.format";
pub(crate) const LOCATION: &str = "skiff.table.location";
pub(crate) const FLUSH_MS: &str = "skiff.table.flush.ms";
pub(crate) const FLUSH_BYTES: &str = "skiff.table.flush.bytes";
pub(crate) const SINK_ONLY: &str = "skiff.table.sink.only";
pub(crate) const PARTITION_BY: &str = "skiff.table.partition.by";

/// The table formats this build writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Plain Parquet files (`skiff_sink::table::ParquetTable`).
    Parquet,
    /// A Delta Lake table (`skiff_sink_delta::DeltaLakeTable`), with the `delta` feature.
    Delta,
    /// An Apache Iceberg table in the broker's catalog (`skiff_sink_iceberg::IcebergTable`),
    /// with the `iceberg` feature.
    Iceberg,
}

/// What a topic's configs ask of its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableConfig {
    pub(crate) format: Format,
    /// The location URL: the topic's `skiff.table.location`, or the broker's default.
    pub(crate) location: String,
    /// Commit at least this often while rows wait.
    pub(crate) flush: Duration,
    /// Commit once this many record bytes wait.
    pub(crate) flush_bytes: usize,
    /// The log is only a buffer: records are deleted from it once committed to the table.
    pub(crate) sink_only: bool,
    /// How the table's rows are partitioned (empty: not partitioned).
    pub(crate) partition_by: PartitionBy,
    /// Values are bare payloads of the subject's latest schema (`skiff.value.schema.framing=raw`)
    /// rather than Confluent-framed with a schema id.
    pub(crate) raw_values: bool,
}

impl TableConfig {
    /// The table a topic's configs ask for: `None` without `skiff.table.format`; a message
    /// for the client when they cannot work.
    pub(crate) fn of(
        configs: &BTreeMap<String, String>,
        default_location: Option<&str>,
    ) -> Result<Option<TableConfig>, String> {
        let format = match topic_config::effective(configs, FORMAT).unwrap_or_default() {
            "" => return Ok(None),
            "parquet" => Format::Parquet,
            "delta" if cfg!(feature = "delta") => Format::Delta,
            "delta" => {
                return Err(format!(
                    "{FORMAT}=delta: this build has no Delta Lake support (build skiff with the \
                     `delta` feature, on by default)"
                ))
            }
            "iceberg" if cfg!(feature = "iceberg") => Format::Iceberg,
            "iceberg" => {
                return Err(format!(
                    "{FORMAT}=iceberg: this build has no Apache Iceberg support (build skiff \
                     with the `iceberg` feature, on by default)"
                ))
            }
            other => return Err(format!("invalid value {other:?} for topic config {FORMAT}")),
        };
        let location = match topic_config::effective(configs, LOCATION).unwrap_or_default() {
            "" => default_location.unwrap_or_default(),
            set => set,
        };
        if location.is_empty() {
            return Err(format!(
                "{FORMAT} needs a location: set {LOCATION} or start brokers with --table-location"
            ));
        }
        Location::check(location).map_err(|error| error.to_string())?;
        let partition_by =
            PartitionBy::parse(topic_config::effective(configs, PARTITION_BY).unwrap_or_default())
                .map_err(|error| format!("{PARTITION_BY}: {error}"))?;
        if !partition_by.is_empty() && format == Format::Parquet {
            return Err(format!(
                "{PARTITION_BY} applies to iceberg and delta tables: a parquet commit is one \
                 file (what makes it atomic for readers that list files)"
            ));
        }
        if let Some(refusal) = partition_by.delta_refusal().filter(|_| format == Format::Delta) {
            return Err(format!("{PARTITION_BY}: {refusal}"));
        }
        let number = |name: &str, default: u64| {
            topic_config::effective(configs, name)
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(default)
        };
        Ok(Some(TableConfig {
            format,
            location: location.to_owned(),
            flush: Duration::from_millis(number(FLUSH_MS, 60_000)),
            flush_bytes: usize::try_from(number(FLUSH_BYTES, 16 << 20)).unwrap_or(usize::MAX),
            sink_only: topic_config::effective(configs, SINK_ONLY) == Some("true"),
            partition_by,
            raw_values: topic_config::effective(configs, "skiff.value.schema.framing")
                == Some("raw"),
        }))
    }
}

/// Whether a topic is a sink topic (its log only a buffer for its table).
pub(crate) fn is_sink_only(configs: &BTreeMap<String, String>) -> bool {
    topic_config::effective(configs, FORMAT).is_some_and(|format| !format.is_empty())
        && topic_config::effective(configs, SINK_ONLY) == Some("true")
}

/// The subject whose schema gives a topic's table its columns.
pub(crate) fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Checks that a topic with these configs can have the table they ask for: a usable format
/// and location, validated records, and a schema in the registry that maps onto columns.
/// The error is a message for the client (sent with INVALID_CONFIG).
pub(crate) async fn check(
    broker: &Broker,
    topic: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(table) = TableConfig::of(configs, broker.config.table_location.as_deref())? else {
        if topic_config::effective(configs, SINK_ONLY) == Some("true") {
            return Err(format!("{SINK_ONLY}=true needs a table: set {FORMAT}"));
        }
        return Ok(());
    };
    if table.format == Format::Iceberg && broker.config.iceberg_catalog.is_none() {
        return Err(format!(
            "{FORMAT}=iceberg needs a catalog: start brokers with --iceberg-catalog \
             (sqlite://... or postgres://...; a sqlite:// or postgres:// storage is its own \
             catalog by default)"
        ));
    }
    if topic_config::effective(configs, "skiff.schema.validation") != Some("true") {
        return Err(
            "a table needs skiff.schema.validation=true: only validated records fit its columns"
                .to_owned(),
        );
    }
    if topic_config::effective(configs, "skiff.subject.name.strategy") != Some("topic") {
        return Err(format!(
            "a table takes its columns from one subject: {FORMAT} needs \
             skiff.subject.name.strategy=topic"
        ));
    }
    let subject = value_subject(topic);
    let latest = broker
        .registry()
        .latest(&subject)
        .await
        .map_err(|error| format!("cannot read subject {subject}: {error}"))?;
    let Some(latest) = latest else {
        return Err(format!(
            "topic {topic} has no schema: register one under subject {subject} before setting \
             {FORMAT}"
        ));
    };
    let columns = TableSchema::new(latest.schema.schema.clone(), &[])
        .map_err(|error| format!("the schema of {subject} has no table columns: {error}"))?;
    let columns = columns.arrow_schema();
    let checked = match table.format {
        Format::Delta => table.partition_by.check_delta(&columns),
        _ => table.partition_by.check(&columns),
    };
    checked.map_err(|error| format!("{PARTITION_BY}: {error} (columns of {subject})"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_table_is_asked_for_by_its_format() {
        assert_eq!(TableConfig::of(&configs(&[]), Some("file:///t")), Ok(None));
        let parsed = TableConfig::of(
            &configs(&[(FORMAT, "parquet"), (FLUSH_MS, "250"), (SINK_ONLY, "true")]),
            Some("file:///tables"),
        );
        let table = parsed.expect("valid").expect("a table");
        assert_eq!(table.format, Format::Parquet);
        assert_eq!(table.location, "file:///tables", "the broker's default location");
        assert_eq!(table.flush, Duration::from_millis(250));
        assert_eq!(table.flush_bytes, 16 << 20);
        assert!(table.sink_only);

        let own = configs(&[(FORMAT, "parquet"), (LOCATION, "s3://lake/raw")]);
        let table = TableConfig::of(&own, Some("file:///tables")).expect("valid").expect("table");
        assert_eq!(table.location, "s3://lake/raw", "the topic's own location wins");
    }

    #[test]
    fn unusable_tables_are_refused_with_a_reason() {
        let no_location = TableConfig::of(&configs(&[(FORMAT, "parquet")]), None);
        assert!(no_location.is_err_and(|m| m.contains("--table-location")));
        let relative = configs(&[(FORMAT, "parquet"), (LOCATION, "file://here")]);
        assert!(TableConfig::of(&relative, None).is_err_and(|m| m.contains("absolute")));
        let iceberg = TableConfig::of(&configs(&[(FORMAT, "iceberg")]), Some("file:///t"));
        if cfg!(feature = "iceberg") {
            assert_eq!(iceberg.expect("valid").map(|table| table.format), Some(Format::Iceberg));
        } else {
            assert!(iceberg.is_err_and(|m| m.contains("no Apache Iceberg support")));
        }
    }

    #[test]
    fn partitioning_is_parsed_and_refused_where_a_format_has_none() {
        let iceberg = configs(&[(FORMAT, "iceberg"), (PARTITION_BY, "day(_timestamp), region")]);
        if cfg!(feature = "iceberg") {
            let table =
                TableConfig::of(&iceberg, Some("file:///t")).expect("valid").expect("table");
            assert_eq!(table.partition_by.to_string(), "day(_timestamp), region");
        }
        let parquet = configs(&[(FORMAT, "parquet"), (PARTITION_BY, "region")]);
        assert!(TableConfig::of(&parquet, Some("file:///t")).is_err_and(|m| m.contains("iceberg")));
        let delta = configs(&[(FORMAT, "delta"), (PARTITION_BY, "day(_timestamp), region")]);
        if cfg!(feature = "delta") {
            let table = TableConfig::of(&delta, Some("file:///t")).expect("valid").expect("table");
            assert_eq!(table.partition_by.to_string(), "day(_timestamp), region");
        }
        let bucket = configs(&[(FORMAT, "delta"), (PARTITION_BY, "bucket(4, id)")]);
        let refused = TableConfig::of(&bucket, Some("file:///t")).expect_err("refused");
        let reason = if cfg!(feature = "delta") { "no bucket" } else { "delta" };
        assert!(refused.contains(reason), "{refused}");
        let bad = configs(&[(FORMAT, "iceberg"), (PARTITION_BY, "week(ts)")]);
        assert!(TableConfig::of(&bad, Some("file:///t"))
            .is_err_and(|m| m.contains(PARTITION_BY) && m.contains("unknown transform")));
        let unset = configs(&[(FORMAT, "parquet")]);
        let table = TableConfig::of(&unset, Some("file:///t")).expect("valid").expect("table");
        assert!(table.partition_by.is_empty());
    }

    #[test]
    fn sink_only_needs_a_format() {
        assert!(is_sink_only(&configs(&[(FORMAT, "parquet"), (SINK_ONLY, "true")])));
        assert!(!is_sink_only(&configs(&[(SINK_ONLY, "true")])));
        assert!(!is_sink_only(&configs(&[(FORMAT, "parquet")])));
    }
}
