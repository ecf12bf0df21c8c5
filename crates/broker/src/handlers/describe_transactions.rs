//! DescribeTransactions: the stored record of each transactional id, for admin tools.
//!
//! ACLs: DESCRIBE on each transactional id, else its entry carries
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED (and nothing of its record).

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
pub(super) use kafka_protocol::messages::DescribeTransactionsRequest;
use kafka_protocol::messages::{DescribeTransactionsResponse, ProducerId, TopicName};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::transactions::{self, state::Transaction};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeTransactionsRequest,
    context: &RequestContext<'_>,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let state = TransactionState::default().with_transactional_id(id.clone());
        if !context.allows(Operation::Describe, ResourceType::TransactionalId, &id.0) {
            let code = ErrorCode::TransactionalIdAuthorizationFailed.code();
            states.push(state.with_error_code(code));
            continue;
        }
        states.push(match transactions::load(broker, &id.0).await {
            Ok(Some(stored)) => describe(state, &stored.transaction),
            Ok(None) => state.with_error_code(ErrorCode::TransactionalIdNotFound.code()),
            Err(error) => state.with_error_code(errors::code_for(&error)),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

fn describe(state: TransactionState, txn: &Transaction) -> TransactionState {
    let mut topics: Vec<TopicData> = Vec::new();
    for (topic, partition) in &txn.partitions {
        match topics.last_mut() {
            Some(last) if last.topic.0.as_str() == topic => last.partitions.push(*partition),
            _ => topics.push(
                TopicData::default()
                    .with_topic(TopicName(str_bytes(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    state
        .with_transaction_state(str_bytes(txn.status.name()))
        .with_transaction_timeout_ms(txn.timeout_ms)
        .with_transaction_start_time_ms(txn.started_ms)
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.producer_epoch)
        .with_topics(topics)
}
