//! Metadata and ListOffsets lookups that several commands share.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{errors, Client};

/// ListOffsets timestamp asking for the log start offset.
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets timestamp asking for the high watermark (the next offset to be written).
pub(crate) const LATEST: i64 = -1;

/// UNKNOWN_TOPIC_OR_PARTITION: Kafka marks it retriable, but a Metadata answer carrying it means
/// the topic is missing and was not auto-created (a fresh one gets LEADER_NOT_AVAILABLE).
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// How often, and how far apart, a topic lookup is retried while the broker reports a retriable
/// error (Kafka answers LEADER_NOT_AVAILABLE right after auto-creating a topic).
const METADATA_ATTEMPTS: u32 = 20;
const METADATA_RETRY_DELAY: Duration = Duration::from_millis(100);

/// What the tools need to know about one topic.
#[derive(Debug, Clone)]
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    pub(crate) topic_id: String,
    pub(crate) partitions: Vec<PartitionInfo>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionInfo {
    pub(crate) index: i32,
    pub(crate) leader: i32,
}

impl TopicInfo {
    pub(crate) fn partition_indexes(&self) -> Vec<i32> {
        self.partitions.iter().map(|partition| partition.index).collect()
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Metadata may answer without a name (topics addressed by id); such entries match nothing.
fn name_of(name: &Option<TopicName>) -> Option<&str> {
    name.as_ref().map(|name| name.0.as_str())
}

/// Looks up one topic, letting the broker create it when `auto_create` is set and it allows
/// that; retries while the broker reports a retriable error.
pub(crate) async fn topic_metadata(
    client: &mut Client,
    topic: &str,
    auto_create: bool,
) -> anyhow::Result<TopicInfo> {
    let mut attempt = 1;
    loop {
        let response = metadata(client, Some(topic), auto_create).await?;
        let Some(found) = response.topics.into_iter().find(|t| name_of(&t.name) == Some(topic))
        else {
            bail!("the broker's metadata answer does not mention topic {topic}");
        };
        let code = found.error_code;
        if code == 0 && !found.partitions.is_empty() {
            return Ok(topic_info(topic, &found));
        }
        if code == UNKNOWN_TOPIC_OR_PARTITION {
            if auto_create {
                bail!(
                    "topic {topic} does not exist and the broker did not create it \
                     (create it with `skiff topic create {topic}`)"
                );
            }
            bail!("topic {topic} does not exist");
        }
        if attempt >= METADATA_ATTEMPTS || (code != 0 && !errors::is_retriable(code)) {
            errors::check(code, None, &format!("looking up topic {topic}"))?;
            bail!("topic {topic} has no partitions");
        }
        attempt += 1;
        tokio::time::sleep(METADATA_RETRY_DELAY).await;
    }
}

fn topic_info(topic: &str, found: &MetadataResponseTopic) -> TopicInfo {
    let mut partitions: Vec<PartitionInfo> = found
        .partitions
        .iter()
        .map(|p| PartitionInfo { index: p.partition_index, leader: p.leader_id.0 })
        .collect();
    partitions.sort_by_key(|partition| partition.index);
    TopicInfo { name: topic.to_owned(), topic_id: found.topic_id.to_string(), partitions }
}

/// All topic names the broker knows, sorted.
pub(crate) async fn topic_names(client: &mut Client) -> anyhow::Result<Vec<String>> {
    let response = metadata(client, None, false).await?;
    let mut names: Vec<String> = response
        .topics
        .iter()
        .filter_map(|topic| name_of(&topic.name).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// A Metadata request for one topic, or all topics when `topic` is `None`.
async fn metadata(
    client: &mut Client,
    topic: Option<&str>,
    auto_create: bool,
) -> anyhow::Result<MetadataResponse> {
    // v1 is the first version where "no list" means all topics rather than none.
    let version = client.version::<MetadataRequest>(i16::MAX)?;
    if version < 1 {
        bail!("the broker only speaks Metadata v0, which these tools do not use");
    }
    let topics =
        topic.map(|name| vec![MetadataRequestTopic::default().with_name(Some(topic_name(name)))]);
    let mut request = MetadataRequest::default().with_topics(topics);
    // Before v4 the field does not exist and brokers always auto-create.
    if version >= 4 {
        request = request.with_allow_auto_topic_creation(auto_create);
    }
    client.send(request, version).await
}

/// The offset at `timestamp` (use [`EARLIEST`] or [`LATEST`]) of each listed partition.
pub(crate) async fn list_offsets(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let version = client.version::<ListOffsetsRequest>(i16::MAX)?;
    let wanted = partitions
        .iter()
        .map(|&index| {
            ListOffsetsPartition::default().with_partition_index(index).with_timestamp(timestamp)
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_timeout_ms(30_000)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(wanted)]);
    let response = client.send(request, version).await?;
    let mut offsets = BTreeMap::new();
    for answered in response.topics.iter().filter(|answered| answered.name.as_str() == topic) {
        for partition in &answered.partitions {
            let what = format!("listing offsets of {topic}/{}", partition.partition_index);
            errors::check(partition.error_code, None, &what)?;
            offsets.insert(partition.partition_index, partition.offset);
        }
    }
    if let Some(missing) = partitions.iter().find(|index| !offsets.contains_key(index)) {
        bail!("the broker did not report an offset for {topic}/{missing}");
    }
    Ok(offsets)
}
