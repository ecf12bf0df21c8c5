//! Schema validation of Produce requests in front of any Kafka cluster (`--schema-registry`).
//!
//! [`SchemaValidation`] is a [`ProduceHook`]: it decodes each Produce request, checks every
//! partition's records with the validator the broker uses (`skiff_schema::validator`), and
//! - forwards the request untouched when every partition is valid;
//! - refuses the partitions holding invalid records with INVALID_RECORD and `record_errors`
//!   (the broker's answer, built by `skiff_protocol::produce`), forwards the request re-encoded
//!   without them, and has the client connection merge the refusals into the upstream's answer
//!   ([`Refusals`], `rewrite::produce`);
//! - answers at once, without contacting upstream, when every partition is refused.
//!
//! A partition whose records cannot be checked (the registry is unreachable or failing) is
//! refused with KAFKA_STORAGE_ERROR, which clients retry: unchecked data is never forwarded.
//!
//! The proxy does not know topic configs, so every topic whose `<topic>-value` or
//! `<topic>-key` subject has a live version is checked, in Confluent's wire format; null values
//! pass (the proxy cannot tell a compacted topic's tombstones from other nulls).
//!
//! - [`http_source`]: the registry over HTTP, with its caches.

pub mod http_source;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable};
use skiff_protocol::batch::split_batches;
use skiff_protocol::produce::{code_for_batch_error, refuse_partition, refuse_records};
use skiff_protocol::ErrorCode;
use skiff_schema::validator::{CheckError, SchemaSource, TopicRules, Validator};
use tracing::{debug, info, warn};

pub use http_source::HttpSchemaSource;

use crate::hook::{ProduceHook, ProduceVerdict, ProduceView};
use crate::ProxyError;

/// How far one batch may inflate while its records are checked: a client's batches stay far
/// below (about 1 MiB uncompressed by default), a compression bomb is refused beyond it.
pub const INFLATE_LIMIT: usize = 16 * 1024 * 1024;

/// The partitions of a Produce request the proxy refused, and the order of all its partitions,
/// to answer them in the order the client sent them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refusals {
    /// Every partition of the request as sent: topic name and partition index.
    order: Vec<(TopicName, i32)>,
    refused: HashMap<(TopicName, i32), PartitionProduceResponse>,
}

impl Refusals {
    /// How many partitions were refused.
    pub fn len(&self) -> usize {
        self.refused.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refused.is_empty()
    }

    /// The answer to the whole request: the refusals merged into `upstream`'s answer to the
    /// partitions that were forwarded (`None`: nothing was forwarded), in request order.
    pub(crate) fn answer(&self, upstream: Option<ProduceResponse>) -> ProduceResponse {
        let mut response = upstream.unwrap_or_default();
        let mut forwarded: HashMap<(TopicName, i32), PartitionProduceResponse> = HashMap::new();
        for topic in std::mem::take(&mut response.responses) {
            for partition in topic.partition_responses {
                forwarded.insert((topic.name.clone(), partition.index), partition);
            }
        }
        let mut topics: Vec<TopicProduceResponse> = Vec::new();
        for key in &self.order {
            let Some(partition) = self.refused.get(key).cloned().or_else(|| forwarded.remove(key))
            else {
                continue;
            };
            match topics.last_mut() {
                Some(topic) if topic.name == key.0 => topic.partition_responses.push(partition),
                _ => topics.push(
                    TopicProduceResponse::default()
                        .with_name(key.0.clone())
                        .with_partition_responses(vec![partition]),
                ),
            }
        }
        // Whatever upstream answered that the request did not ask is passed on too.
        for ((name, _), partition) in forwarded {
            topics.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(vec![partition]),
            );
        }
        response.with_responses(topics)
    }
}

/// Checks Produce requests against a Schema Registry before they go upstream.
pub struct SchemaValidation {
    validator: Validator,
}

impl SchemaValidation {
    pub fn new(source: Arc<dyn SchemaSource>) -> Self {
        Self { validator: Validator::new(source) }
    }

    /// Validation against the registry at `url` (Skiff's or Confluent's), each registry
    /// request limited to `timeout`.
    pub fn over_http(url: &str, timeout: Duration) -> Result<Self, ProxyError> {
        let source = HttpSchemaSource::new(url, timeout)
            .map_err(|reason| ProxyError::Config(format!("--schema-registry {reason}")))?;
        Ok(Self::new(Arc::new(source)))
    }

    /// `None` if the partition may go upstream; otherwise the answer refusing it.
    async fn check_partition(
        &self,
        topic: &TopicName,
        partition: &PartitionProduceData,
    ) -> Option<PartitionProduceResponse> {
        let index = partition.index;
        let records = partition.records.clone().unwrap_or_default();
        let batches = match split_batches(&records) {
            Ok(batches) => batches,
            Err(error) => {
                return Some(refuse_partition(
                    index,
                    code_for_batch_error(&error),
                    error.to_string(),
                ))
            }
        };
        let rules = TopicRules { null_values_pass: true, ..TopicRules::default() };
        match self.validator.check(topic, &rules, &batches, INFLATE_LIMIT).await {
            Ok(invalid) if invalid.is_empty() => None,
            Ok(invalid) => {
                let invalid: Vec<(i32, String)> =
                    invalid.into_iter().map(|record| (record.index, record.reason)).collect();
                let first = invalid.first().map(|(at, reason)| format!("record {at}: {reason}"));
                debug!(topic = %topic.0, partition = index, records = invalid.len(), first, "refused records failing the schema");
                Some(refuse_records(index, &invalid))
            }
            Err(CheckError::Batch(error)) => {
                Some(refuse_partition(index, code_for_batch_error(&error), error.to_string()))
            }
            Err(error) => {
                warn!(topic = %topic.0, partition = index, %error, "records not checked: partition refused");
                Some(refuse_partition(index, ErrorCode::KafkaStorageError, error.to_string()))
            }
        }
    }
}

#[async_trait]
impl ProduceHook for SchemaValidation {
    fn enabled(&self) -> bool {
        true
    }

    async fn check(&self, view: &ProduceView<'_>) -> ProduceVerdict {
        let mut body = view.body.clone();
        let request = match ProduceRequest::decode(&mut body, view.api_version) {
            Ok(request) => request,
            Err(error) => {
                return ProduceVerdict::Reject {
                    reason: format!("undecodable Produce v{}: {error}", view.api_version),
                }
            }
        };
        let mut refusals = Refusals::default();
        let mut kept_topics = Vec::with_capacity(request.topic_data.len());
        let mut request = request;
        for mut topic in std::mem::take(&mut request.topic_data) {
            let mut kept = Vec::with_capacity(topic.partition_data.len());
            for partition in std::mem::take(&mut topic.partition_data) {
                refusals.order.push((topic.name.clone(), partition.index));
                match self.check_partition(&topic.name, &partition).await {
                    None => kept.push(partition),
                    Some(refused) => {
                        refusals.refused.insert((topic.name.clone(), partition.index), refused);
                    }
                }
            }
            if !kept.is_empty() {
                kept_topics.push(topic.with_partition_data(kept));
            }
        }
        if refusals.is_empty() {
            return ProduceVerdict::Forward;
        }
        if view.acks == 0 {
            info!(
                correlation_id = view.correlation_id,
                client_id = view.client_id,
                partitions = refusals.len(),
                "acks=0 produce: dropped partitions whose records failed the schema check"
            );
        }
        if kept_topics.is_empty() {
            return ProduceVerdict::Answer { refusals };
        }
        let mut out = BytesMut::new();
        let request = request.with_topic_data(kept_topics);
        if let Err(error) = request.encode(&mut out, view.api_version) {
            return ProduceVerdict::Reject {
                reason: format!("cannot encode Produce v{}: {error}", view.api_version),
            };
        }
        ProduceVerdict::Split { body: Bytes::from(out), refusals }
    }
}

#[cfg(test)]
mod tests;
