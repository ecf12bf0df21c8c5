//! `skiff topic`: create, list, describe and delete topics over the Kafka protocol, so it works
//! against any Skiff broker (or any Kafka broker) without touching storage directly.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::lookups::{self, topic_name, TopicInfo};
use crate::client::{errors, Client};

/// Broker-side timeout for topic creation and deletion.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// DescribeConfigs resource type of a topic.
const TOPIC_RESOURCE: i8 = 2;

/// DescribeConfigs config source meaning "set on this topic" (Kafka's TOPIC_CONFIG); other
/// sources are broker settings and defaults, which describe leaves out.
const TOPIC_CONFIG_SOURCE: i8 = 1;

#[derive(Args)]
pub(crate) struct TopicArgs {
    /// Broker to talk to (HOST:PORT, or several separated by commas).
    #[arg(long, env = "SKIFF_BOOTSTRAP", default_value = "localhost:9092", global = true)]
    bootstrap: String,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names, one per line.
    List,
    /// Show a topic's partitions, offsets and non-default configs.
    Describe {
        /// Topic to describe.
        name: String,
    },
    /// Delete a topic and its records.
    Delete {
        /// Topic to delete.
        name: String,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// Topic to create.
    name: String,
    /// Number of partitions; -1 lets the broker choose its default.
    #[arg(long, env = "SKIFF_TOPIC_PARTITIONS", default_value_t = -1, allow_negative_numbers = true)]
    partitions: i32,
    /// Topic config as KEY=VALUE, e.g. retention.ms=86400000; repeat for several. Values may
    /// contain commas (cleanup.policy=compact,delete), so the variable holds a single pair.
    #[arg(long = "config", env = "SKIFF_TOPIC_CONFIG", value_parser = parse_config)]
    configs: Vec<(String, String)>,
}

pub(crate) async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap).await?;
    match args.command {
        TopicCommand::Create(create_args) => create(&mut client, create_args).await,
        TopicCommand::List => list(&mut client).await,
        TopicCommand::Describe { name } => describe(&mut client, &name).await,
        TopicCommand::Delete { name } => delete(&mut client, &name).await,
    }
}

/// Splits `KEY=VALUE` at the first `=`; values may themselves contain `=`.
fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

async fn create(client: &mut Client, args: CreateArgs) -> anyhow::Result<()> {
    if args.partitions == 0 || args.partitions < -1 {
        bail!("--partitions must be positive (or -1 for the broker's default)");
    }
    let version = client.version::<CreateTopicsRequest>(i16::MAX)?;
    let configs = args
        .configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_name(topic_name(&args.name))
        .with_num_partitions(args.partitions)
        .with_replication_factor(-1)
        .with_configs(configs);
    let request =
        CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(ADMIN_TIMEOUT_MS);
    let response = client.send(request, version).await?;
    let Some(result) = response.topics.iter().find(|result| result.name.as_str() == args.name)
    else {
        bail!("the broker's answer does not mention topic {}", args.name);
    };
    let what = format!("creating topic {}", args.name);
    errors::check(result.error_code, result.error_message.as_deref(), &what)?;
    // num_partitions is only reported from v5 on; -1 means "not reported".
    if result.num_partitions > 0 {
        let plural = if result.num_partitions == 1 { "" } else { "s" };
        println!("created topic {} with {} partition{plural}", args.name, result.num_partitions);
    } else {
        println!("created topic {}", args.name);
    }
    Ok(())
}

async fn list(client: &mut Client) -> anyhow::Result<()> {
    for name in lookups::topic_names(client).await? {
        println!("{name}");
    }
    Ok(())
}

async fn describe(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let topic = lookups::topic_metadata(client, name, false).await?;
    let indexes = topic.partition_indexes();
    let earliest = lookups::list_offsets(client, name, &indexes, lookups::EARLIEST).await?;
    let latest = lookups::list_offsets(client, name, &indexes, lookups::LATEST).await?;
    let configs = topic_configs(client, name).await?;
    print!(
        "{}",
        describe_text(&topic, &configs, |index| {
            (earliest.get(&index).copied(), latest.get(&index).copied())
        })
    );
    Ok(())
}

/// Kafka-like `describe` output: a header line, the configs set on the topic (separated by
/// `; ` since values may contain commas), one line per partition with its log start offset and
/// high watermark.
fn describe_text(
    topic: &TopicInfo,
    configs: &Option<Vec<(String, String)>>,
    offsets: impl Fn(i32) -> (Option<i64>, Option<i64>),
) -> String {
    let mut text = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\n",
        topic.name,
        topic.topic_id,
        topic.partitions.len()
    );
    let configs = match configs {
        None => "(the broker does not support DescribeConfigs)".to_owned(),
        Some(configs) if configs.is_empty() => "(none)".to_owned(),
        Some(configs) => configs
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    text.push_str(&format!("Configs: {configs}\n"));
    for partition in &topic.partitions {
        let (start, end) = offsets(partition.index);
        let show = |offset: Option<i64>| offset.map_or("?".to_owned(), |offset| offset.to_string());
        text.push_str(&format!(
            "\tPartition: {}\tLeader: {}\tLogStartOffset: {}\tHighWatermark: {}\n",
            partition.index,
            partition.leader,
            show(start),
            show(end)
        ));
    }
    text
}

/// The configs set on the topic itself, sorted by key; `None` when the broker cannot say.
async fn topic_configs(
    client: &mut Client,
    name: &str,
) -> anyhow::Result<Option<Vec<(String, String)>>> {
    if !client.supports(ApiKey::DescribeConfigs) {
        return Ok(None);
    }
    let version = client.version::<DescribeConfigsRequest>(i16::MAX)?;
    let resource = DescribeConfigsResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(StrBytes::from_string(name.to_owned()))
        .with_configuration_keys(None);
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = client.send(request, version).await?;
    let mut configs = Vec::new();
    for result in &response.results {
        let what = format!("describing the configs of {name}");
        errors::check(result.error_code, result.error_message.as_deref(), &what)?;
        configs.extend(result.configs.iter().filter_map(set_on_topic));
    }
    configs.sort();
    Ok(Some(configs))
}

fn set_on_topic(config: &DescribeConfigsResourceResult) -> Option<(String, String)> {
    if config.config_source != TOPIC_CONFIG_SOURCE {
        return None;
    }
    let value = match (&config.value, config.is_sensitive) {
        (_, true) => "(sensitive)".to_owned(),
        (Some(value), false) => value.to_string(),
        (None, false) => "(null)".to_owned(),
    };
    Some((config.name.to_string(), value))
}

async fn delete(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let version = client.version::<DeleteTopicsRequest>(i16::MAX)?;
    let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
    // v6 names topics in a list of structs (which may carry ids); earlier versions by name.
    if version >= 6 {
        request.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
    } else {
        request.topic_names = vec![topic_name(name)];
    }
    let response = client.send(request, version).await?;
    let result = response
        .responses
        .iter()
        .find(|result| result.name.as_ref().is_some_and(|answered| answered.as_str() == name))
        .with_context(|| format!("the broker's answer does not mention topic {name}"))?;
    errors::check(
        result.error_code,
        result.error_message.as_deref(),
        &format!("deleting topic {name}"),
    )?;
    println!("deleted topic {name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::lookups::PartitionInfo;

    #[test]
    fn config_pairs_split_at_the_first_equals() {
        assert_eq!(parse_config("retention.ms=1000"), Ok(("retention.ms".into(), "1000".into())));
        assert_eq!(parse_config("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_config("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_config("novalue").is_err());
        assert!(parse_config("=x").is_err());
    }

    #[test]
    fn describe_shows_offsets_and_configs() {
        let topic = TopicInfo {
            name: "t".into(),
            topic_id: "id".into(),
            partitions: vec![
                PartitionInfo { index: 0, leader: 0 },
                PartitionInfo { index: 1, leader: 0 },
            ],
        };
        let configs = Some(vec![
            ("cleanup.policy".into(), "compact,delete".into()),
            ("retention.ms".into(), "1".into()),
        ]);
        let text = describe_text(&topic, &configs, |index| (Some(0), Some(10 * i64::from(index))));
        assert_eq!(
            text,
            "Topic: t\tTopicId: id\tPartitionCount: 2\nConfigs: cleanup.policy=compact,delete; retention.ms=1\n\
             \tPartition: 0\tLeader: 0\tLogStartOffset: 0\tHighWatermark: 0\n\
             \tPartition: 1\tLeader: 0\tLogStartOffset: 0\tHighWatermark: 10\n"
        );
    }
}
