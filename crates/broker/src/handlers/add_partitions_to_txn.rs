//! AddPartitionsToTxn (client form, v0-3): the partitions a transaction will write to, so its
//! end knows where to put markers.
//!
//! ACLs: WRITE on the transactional id (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere)
//! and WRITE on each topic (else TOPIC_AUTHORIZATION_FAILED, the other partitions
//! OPERATION_NOT_ATTEMPTED and nothing added).

use std::collections::HashMap;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
pub(super) use kafka_protocol::messages::AddPartitionsToTxnRequest;
use kafka_protocol::messages::AddPartitionsToTxnResponse;
use skiff_protocol::ErrorCode;

use super::{Operation, RequestContext, ResourceType};
use crate::transactions::{self, now_ms};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AddPartitionsToTxnRequest,
    context: &RequestContext<'_>,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| (topic.name.0.to_string(), *p)))
        .collect();
    let codes = if context.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        add(broker, context, &id, &request, wanted).await
    } else {
        vec![ErrorCode::TransactionalIdAuthorizationFailed.code(); wanted.len()]
    };
    respond(&request, codes)
}

/// Adds the partitions to the transaction if every one of them may be: one refused partition
/// fails the request (Kafka's rule), the others answering OPERATION_NOT_ATTEMPTED. The codes
/// are in the order of `wanted`.
async fn add(
    broker: &Broker,
    context: &RequestContext<'_>,
    id: &str,
    request: &AddPartitionsToTxnRequest,
    wanted: Vec<(String, i32)>,
) -> Vec<i16> {
    let refused = match refusals(broker, context, &wanted).await {
        Ok(refused) => refused,
        Err(code) => return vec![code; wanted.len()],
    };
    if refused.iter().any(|code| *code != errors::NONE) {
        let not_attempted = ErrorCode::OperationNotAttempted.code();
        return refused
            .into_iter()
            .map(|code| if code == errors::NONE { not_attempted } else { code })
            .collect();
    }
    let (producer_id, epoch) =
        (request.v3_and_below_producer_id.0, request.v3_and_below_producer_epoch);
    let now = now_ms();
    let count = wanted.len();
    let code = match transactions::update(broker, id, |current| {
        Ok((current.add_partitions(producer_id, epoch, wanted.clone(), now)?, ()))
    })
    .await
    {
        Ok(_) => errors::NONE,
        Err(failure) => failure.code(),
    };
    vec![code; count]
}

/// Why each partition cannot be added (`NONE`: it can), in the order of `wanted`: its topic is
/// not writable by the principal (checked first, so a denied topic's existence is not
/// revealed) or it does not exist. `Err`: a storage error code.
async fn refusals(
    broker: &Broker,
    context: &RequestContext<'_>,
    wanted: &[(String, i32)],
) -> Result<Vec<i16>, i16> {
    let mut writable: HashMap<&str, bool> = HashMap::new();
    let mut codes = Vec::with_capacity(wanted.len());
    for (topic, partition) in wanted {
        let allowed = *writable
            .entry(topic)
            .or_insert_with(|| context.allows(Operation::Write, ResourceType::Topic, topic));
        if !allowed {
            codes.push(ErrorCode::TopicAuthorizationFailed.code());
            continue;
        }
        codes.push(match broker.storage.meta.topic(topic).await {
            Ok(Some(meta)) if *partition >= 0 && *partition < meta.partitions => errors::NONE,
            Ok(_) => ErrorCode::UnknownTopicOrPartition.code(),
            Err(error) => return Err(errors::code_for(&error)),
        });
    }
    Ok(codes)
}

/// The response, giving the partitions their codes (in request order).
fn respond(request: &AddPartitionsToTxnRequest, codes: Vec<i16>) -> AddPartitionsToTxnResponse {
    let mut codes = codes.into_iter();
    let mut results = Vec::with_capacity(request.v3_and_below_topics.len());
    for topic in &request.v3_and_below_topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            partitions.push(
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*partition)
                    .with_partition_error_code(codes.next().unwrap_or(errors::NONE)),
            );
        }
        results.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(partitions),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}
