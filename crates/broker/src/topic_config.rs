//! Topic configs: the names Skiff knows, their defaults, and value checks.
//!
//! Storage keeps only overrides; defaults are the broker's, reported by DescribeConfigs with
//! source DEFAULT_CONFIG so admin tools show the full picture, as Kafka does.

use std::collections::BTreeMap;

/// DescribeConfigs `config_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// DescribeConfigs `config_source` values.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// One known topic config.
pub(crate) struct TopicConfigDef {
    pub(crate) name: &'static str,
    pub(crate) default: &'static str,
    pub(crate) kind: ConfigType,
    /// Allowed values for enumerations (for lists: allowed items).
    pub(crate) choices: &'static [&'static str],
    /// A further check on the value, for what its type alone does not say.
    pub(crate) check: Option<fn(&str) -> bool>,
    pub(crate) doc: &'static str,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef { name, default, kind, choices: &[], check: None, doc }
}

/// A config Kafka 3.x deprecated (or that concerns replicas and local segments, which Skiff does
/// not have) but still accepts: tools keep setting them, so they are stored and described.
const fn kept(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    check: Option<fn(&str) -> bool>,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        default,
        kind,
        choices: &[],
        check,
        doc: "Accepted for compatibility with Kafka 3.x tools; no effect in Skiff.",
    }
}

const NO_LIMIT: &str = "9223372036854775807";

/// `message.format.version` takes a Kafka release such as `0.10.2`, `2.8` or `3.0-IV1`.
fn is_kafka_version(value: &str) -> bool {
    let (release, iv) = match value.split_once("-IV") {
        Some((release, iv)) => (release, Some(iv)),
        None => (value, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    let numeric = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (2..=3).contains(&parts.len()) && parts.iter().all(numeric) && iv.is_none_or(|iv| numeric(&iv))
}

fn in_range(value: &str, low: i64, high: i64) -> bool {
    value.parse::<i64>().is_ok_and(|number| (low..=high).contains(&number))
}

/// Every topic config Skiff accepts, sorted by name.
pub(crate) const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        default: "delete",
        kind: ConfigType::List,
        choices: &["delete", "compact"],
        check: None,
        doc: "Whether old records are deleted by retention, compacted by key, or both.",
    },
    kept("compression.gzip.level", "-1", ConfigType::Int, Some(|v| v == "-1" || in_range(v, 1, 9))),
    kept("compression.lz4.level", "9", ConfigType::Int, Some(|v| in_range(v, 1, 17))),
    TopicConfigDef {
        name: "compression.type",
        default: "producer",
        kind: ConfigType::String,
        choices: &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
        check: None,
        doc: "Compression of stored batches; `producer` keeps what the producer sent.",
    },
    kept("compression.zstd.level", "3", ConfigType::Int, Some(|v| in_range(v, -131072, 22))),
    def(
        "delete.retention.ms",
        "86400000",
        ConfigType::Long,
        "How long tombstones are kept on compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        "60000",
        ConfigType::Long,
        "Accepted for compatibility; Skiff has no local files.",
    ),
    def(
        "flush.messages",
        "9223372036854775807",
        ConfigType::Long,
        "Accepted for compatibility; every acknowledged append is durable.",
    ),
    def(
        "flush.ms",
        "9223372036854775807",
        ConfigType::Long,
        "Accepted for compatibility; every acknowledged append is durable.",
    ),
    kept("follower.replication.throttled.replicas", "", ConfigType::List, None),
    def("index.interval.bytes", "4096", ConfigType::Int, "Accepted for compatibility."),
    kept("leader.replication.throttled.replicas", "", ConfigType::List, None),
    kept("local.retention.bytes", "-2", ConfigType::Long, None),
    kept("local.retention.ms", "-2", ConfigType::Long, None),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        ConfigType::Long,
        "Longest time a record stays uncompacted.",
    ),
    def("max.message.bytes", "1048588", ConfigType::Int, "Largest record batch the topic accepts."),
    kept("message.downconversion.enable", "true", ConfigType::Boolean, None),
    kept("message.format.version", "3.0-IV1", ConfigType::String, Some(is_kafka_version)),
    kept("message.timestamp.after.max.ms", NO_LIMIT, ConfigType::Long, None),
    kept("message.timestamp.before.max.ms", NO_LIMIT, ConfigType::Long, None),
    kept("message.timestamp.difference.max.ms", NO_LIMIT, ConfigType::Long, None),
    TopicConfigDef {
        name: "message.timestamp.type",
        default: "CreateTime",
        kind: ConfigType::String,
        choices: &["CreateTime", "LogAppendTime"],
        check: None,
        doc: "Whether record timestamps are the producer's or the broker's.",
    },
    def(
        "min.cleanable.dirty.ratio",
        "0.5",
        ConfigType::Double,
        "Share of uncompacted log that triggers compaction.",
    ),
    def(
        "min.compaction.lag.ms",
        "0",
        ConfigType::Long,
        "Shortest time a record stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        "1",
        ConfigType::Int,
        "Accepted for compatibility; storage provides durability.",
    ),
    def("preallocate", "false", ConfigType::Boolean, "Accepted for compatibility."),
    // Kafka refuses to turn tiered storage on where the broker does not offer it.
    kept("remote.storage.enable", "false", ConfigType::Boolean, Some(|v| v == "false")),
    def(
        "retention.bytes",
        "-1",
        ConfigType::Long,
        "Largest partition size before old records are deleted (-1: no limit).",
    ),
    def("retention.ms", "604800000", ConfigType::Long, "How long records are kept (-1: forever)."),
    def("segment.bytes", "1073741824", ConfigType::Int, "Accepted for compatibility."),
    def("segment.index.bytes", "10485760", ConfigType::Int, "Accepted for compatibility."),
    def("segment.jitter.ms", "0", ConfigType::Long, "Accepted for compatibility."),
    def("segment.ms", "604800000", ConfigType::Long, "Accepted for compatibility."),
    TopicConfigDef {
        name: "skiff.key.schema.framing",
        default: "wire",
        kind: ConfigType::String,
        choices: &["wire", "raw"],
        check: None,
        doc: "Record keys in the schema registry's wire format (`wire`), or bare payloads checked against the latest version of `<topic>-key` (`raw`).",
    },
    def(
        "skiff.schema.validation",
        "true",
        ConfigType::Boolean,
        "Whether records are checked against the topic's subjects in the schema registry.",
    ),
    TopicConfigDef {
        name: "skiff.subject.name.strategy",
        default: "topic",
        kind: ConfigType::String,
        choices: &["topic", "record", "topic_record"],
        check: None,
        doc: "How the values' subject is named: `topic` (TopicNameStrategy: `<topic>-value`), `record` (RecordNameStrategy: the record's full name) or `topic_record` (TopicRecordNameStrategy: `<topic>-<full name>`). Keys always use `<topic>-key`.",
    },
    TopicConfigDef {
        name: "skiff.table.flush.bytes",
        default: "16777216",
        kind: ConfigType::Long,
        choices: &[],
        check: Some(|v| in_range(v, 1, i64::MAX)),
        doc: "A table commit is made once this many record bytes wait (also bounds a writer's memory per partition).",
    },
    TopicConfigDef {
        name: "skiff.table.flush.ms",
        default: "60000",
        kind: ConfigType::Long,
        choices: &[],
        check: Some(|v| in_range(v, 0, i64::MAX)),
        doc: "A table commit is made at least this often while records wait.",
    },
    TopicConfigDef {
        name: "skiff.table.format",
        default: "",
        kind: ConfigType::String,
        choices: &["", "parquet", "iceberg", "delta"],
        check: None,
        doc: "Write the topic's records as a table: `parquet` (files under the location), `delta` (a Delta Lake table) or `iceberg` (an Apache Iceberg table in the broker's catalog). Empty: no table. Needs a schema under `<topic>-value`.",
    },
    TopicConfigDef {
        name: "skiff.table.location",
        default: "",
        kind: ConfigType::String,
        choices: &[],
        check: Some(|v| v.is_empty() || skiff_sink::table::Location::check(v).is_ok()),
        doc: "Where the table is written: file:///absolute/path or s3://bucket/prefix. Empty: the broker's --table-location.",
    },
    TopicConfigDef {
        name: "skiff.table.partition.by",
        default: "",
        kind: ConfigType::String,
        choices: &[],
        check: Some(|v| skiff_sink::table::PartitionBy::parse(v).is_ok()),
        doc: "How an iceberg table is partitioned: comma-separated terms such as `day(_timestamp)`, `region`, `bucket(16, id)`, `truncate(4, name)`, also `year`, `month`, `hour`. Empty: not partitioned.",
    },
    def(
        "skiff.table.sink.only",
        "false",
        ConfigType::Boolean,
        "A sink topic: records are removed from the log once committed to the table, and consumers see an empty log.",
    ),
    TopicConfigDef {
        name: "skiff.value.schema.framing",
        default: "wire",
        kind: ConfigType::String,
        choices: &["wire", "raw"],
        check: None,
        doc: "Record values in the schema registry's wire format (`wire`), or bare payloads checked against the latest version of `<topic>-value` (`raw`).",
    },
    def(
        "unclean.leader.election.enable",
        "false",
        ConfigType::Boolean,
        "Accepted for compatibility; there are no leaders to elect.",
    ),
];

pub(crate) fn find(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|config| config.name == name)
}

/// Checks one config value; the error is a message for the client.
pub(crate) fn validate(name: &str, value: &str) -> Result<(), String> {
    let config = find(name).ok_or_else(|| format!("unknown topic config {name}"))?;
    let valid = match config.kind {
        ConfigType::Boolean => matches!(value, "true" | "false"),
        ConfigType::Int => value.parse::<i32>().is_ok(),
        ConfigType::Long => value.parse::<i64>().is_ok(),
        ConfigType::Double => value.parse::<f64>().is_ok_and(f64::is_finite),
        ConfigType::String => config.choices.is_empty() || config.choices.contains(&value),
        ConfigType::List => value
            .split(',')
            .map(str::trim)
            .all(|item| config.choices.is_empty() || config.choices.contains(&item)),
    } && config.check.is_none_or(|check| check(value));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid value {value:?} for topic config {name}"))
    }
}

/// Checks every override of a topic, and the combinations that cannot work.
pub(crate) fn validate_all(configs: &BTreeMap<String, String>) -> Result<(), String> {
    configs.iter().try_for_each(|(name, value)| validate(name, value))?;
    let by_record = effective(configs, "skiff.subject.name.strategy") != Some("topic");
    if by_record && effective(configs, "skiff.value.schema.framing") == Some("raw") {
        return Err("skiff.value.schema.framing=raw cannot be used with a record name strategy: \
             a bare payload names no record"
            .to_owned());
    }
    Ok(())
}

/// The effective value: the override if any, else the default.
pub(crate) fn effective<'a>(
    overrides: &'a BTreeMap<String, String>,
    name: &str,
) -> Option<&'a str> {
    overrides.get(name).map(String::as_str).or_else(|| find(name).map(|config| config.default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_by_type_and_choice() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("preallocate", "yes").is_err());
    }

    #[test]
    fn record_name_strategies_need_framed_values() {
        let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let strategy = "skiff.subject.name.strategy";
        let framing = "skiff.value.schema.framing";
        assert!(validate_all(&configs(&[(strategy, "topic_record")])).is_ok());
        assert!(validate_all(&configs(&[(strategy, "topic"), (framing, "raw")])).is_ok());
        assert!(validate_all(&configs(&[(framing, "raw"), ("skiff.key.schema.framing", "raw")]))
            .is_ok());
        let refused = validate_all(&configs(&[(strategy, "record"), (framing, "raw")]));
        assert!(refused.is_err_and(|message| message.contains("names no record")));
        assert!(validate("skiff.subject.name.strategy", "record_topic").is_err());
    }

    #[test]
    fn deprecated_kafka_configs_are_accepted_with_valid_values() {
        for version in ["0.10.2", "2.8", "3.0-IV1", "2.1-IV2", "0.8.0"] {
            assert!(validate("message.format.version", version).is_ok(), "{version}");
        }
        for version in ["", "3", "three", "3.0-IV", "3.0-IVx", "1.2.3.4"] {
            assert!(validate("message.format.version", version).is_err(), "{version:?}");
        }
        assert!(validate("message.downconversion.enable", "false").is_ok());
        assert!(validate("message.downconversion.enable", "no").is_err());
        assert!(validate("message.timestamp.difference.max.ms", "1000").is_ok());
        assert!(validate("compression.zstd.level", "23").is_err());
        assert!(validate("compression.gzip.level", "0").is_err());
        assert!(validate("follower.replication.throttled.replicas", "0:1,1:1").is_ok());
        assert!(validate("remote.storage.enable", "true").is_err(), "no tiered storage here");
    }

    #[test]
    fn configs_are_sorted_and_defaults_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
        }
        for config in TOPIC_CONFIGS {
            assert!(validate(config.name, config.default).is_ok(), "{}", config.name);
        }
    }

    #[test]
    fn effective_prefers_overrides() {
        let overrides = BTreeMap::from([("retention.ms".to_owned(), "5".to_owned())]);
        assert_eq!(effective(&overrides, "retention.ms"), Some("5"));
        assert_eq!(effective(&overrides, "retention.bytes"), Some("-1"));
        assert_eq!(effective(&overrides, "nope"), None);
    }
}
