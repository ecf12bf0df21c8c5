//! AddPartitionsToTxn (client form, v0-3): the partitions a transaction will write to, so its
//! end knows where to put markers.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
pub(super) use kafka_protocol::messages::AddPartitionsToTxnRequest;
use kafka_protocol::messages::AddPartitionsToTxnResponse;
use skiff_protocol::ErrorCode;

use crate::transactions::{self, now_ms};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(|p| (topic.name.0.to_string(), *p)))
        .collect();
    let unknown = unknown_partitions(broker, &wanted).await;
    let code_for = |partition: &(String, i32)| -> i16 {
        match &unknown {
            Err(code) => *code,
            Ok(unknown) if unknown.contains(partition) => ErrorCode::UnknownTopicOrPartition.code(),
            Ok(unknown) if !unknown.is_empty() => ErrorCode::OperationNotAttempted.code(),
            Ok(_) => 0,
        }
    };
    let outcome = match &unknown {
        Ok(unknown) if unknown.is_empty() => {
            let (producer_id, epoch) =
                (request.v3_and_below_producer_id.0, request.v3_and_below_producer_epoch);
            let now = now_ms();
            transactions::update(broker, &id, |current| {
                Ok((current.add_partitions(producer_id, epoch, wanted.clone(), now)?, ()))
            })
            .await
            .map(|_| ())
            .map_err(|failure| failure.code())
        }
        _ => Ok(()),
    };
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let code = match &outcome {
                        Err(code) => *code,
                        Ok(_) => code_for(&(topic.name.0.to_string(), *partition)),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*partition)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// The requested partitions that do not exist (or a storage error code).
async fn unknown_partitions(
    broker: &Broker,
    wanted: &[(String, i32)],
) -> Result<Vec<(String, i32)>, i16> {
    let mut unknown = Vec::new();
    for (topic, partition) in wanted {
        match broker.storage.meta.topic(topic).await {
            Ok(Some(meta)) if *partition >= 0 && *partition < meta.partitions => {}
            Ok(_) => unknown.push((topic.clone(), *partition)),
            Err(error) => return Err(crate::errors::code_for(&error)),
        }
    }
    Ok(unknown)
}
