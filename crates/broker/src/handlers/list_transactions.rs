//! ListTransactions: transactional ids known to storage, filtered by state, producer id and
//! (v1) how long the transaction has been running.
//!
//! ACLs: only the transactional ids the principal may DESCRIBE are listed.

use kafka_protocol::messages::list_transactions_response::TransactionState;
pub(super) use kafka_protocol::messages::ListTransactionsRequest;
use kafka_protocol::messages::{ListTransactionsResponse, ProducerId, TransactionalId};

use super::{str_bytes, Operation, RequestContext, ResourceType};
use crate::transactions::{self, now_ms, state::Status};
use crate::{errors, Broker};

const STATES: [&str; 6] =
    ["Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort"];

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: ListTransactionsRequest,
    context: &RequestContext<'_>,
) -> ListTransactionsResponse {
    let all = match transactions::list(broker).await {
        Ok(all) => all,
        Err(error) => {
            return ListTransactionsResponse::default().with_error_code(errors::code_for(&error))
        }
    };
    let now = now_ms();
    let states: Vec<TransactionState> = all
        .into_iter()
        .filter(|(_, txn)| {
            request.state_filters.is_empty()
                || request.state_filters.iter().any(|state| state.as_str() == txn.status.name())
        })
        .filter(|(_, txn)| {
            request.producer_id_filters.is_empty()
                || request.producer_id_filters.iter().any(|id| id.0 == txn.producer_id)
        })
        .filter(|(_, txn)| {
            request.duration_filter < 0
                || (txn.status == Status::Ongoing
                    && now - txn.started_ms >= request.duration_filter)
        })
        .filter(|(id, _)| context.allows(Operation::Describe, ResourceType::TransactionalId, id))
        .map(|(id, txn)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_producer_id(ProducerId(txn.producer_id))
                .with_transaction_state(str_bytes(txn.status.name()))
        })
        .collect();
    let unknown = request
        .state_filters
        .iter()
        .filter(|state| !STATES.contains(&state.as_str()))
        .cloned()
        .collect();
    ListTransactionsResponse::default()
        .with_transaction_states(states)
        .with_unknown_state_filters(unknown)
}
