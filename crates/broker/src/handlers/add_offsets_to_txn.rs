//! AddOffsetsToTxn: a consumer group's offsets will be committed with the transaction
//! (consume-transform-produce with `send_offsets_to_transaction`).
//!
//! ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and READ on
//! the group, else GROUP_AUTHORIZATION_FAILED.

pub(super) use kafka_protocol::messages::AddOffsetsToTxnRequest;
use kafka_protocol::messages::AddOffsetsToTxnResponse;
use skiff_protocol::ErrorCode;

use super::{Operation, RequestContext, ResourceType};
use crate::transactions::{self, now_ms};
use crate::Broker;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AddOffsetsToTxnRequest,
    context: &RequestContext<'_>,
) -> AddOffsetsToTxnResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    if !context.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        let code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return AddOffsetsToTxnResponse::default().with_error_code(code);
    }
    if !context.allows(Operation::Read, ResourceType::Group, &group) {
        let code = ErrorCode::GroupAuthorizationFailed.code();
        return AddOffsetsToTxnResponse::default().with_error_code(code);
    }
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let now = now_ms();
    let outcome = transactions::update(broker, &id, |current| {
        Ok((current.add_group(producer_id, epoch, &group, now)?, ()))
    })
    .await;
    match outcome {
        Ok(_) => AddOffsetsToTxnResponse::default(),
        Err(failure) => AddOffsetsToTxnResponse::default().with_error_code(failure.code()),
    }
}
