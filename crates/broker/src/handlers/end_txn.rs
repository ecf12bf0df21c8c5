//! EndTxn: stores the decision (Prepare*: the commit point) with each partition's high watermark
//! as its markers' bound, then writes the markers and, on commit, the offsets, then records
//! completion. A retry on any broker finishes what a dead broker started.
//!
//! ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

pub(super) use kafka_protocol::messages::EndTxnRequest;
use kafka_protocol::messages::{EndTxnResponse, ProducerId};
use skiff_protocol::ErrorCode;

use super::{Operation, RequestContext, ResourceType};
use crate::transactions::{self, now_ms};
use crate::Broker;

/// From v5 the response carries the producer id and epoch.
const IDS_IN_RESPONSE: i16 = 5;

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    request: EndTxnRequest,
    context: &RequestContext<'_>,
) -> EndTxnResponse {
    let id = request.transactional_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let outcome = if context.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        end(broker, &id, &request).await
    } else {
        Err(ErrorCode::TransactionalIdAuthorizationFailed.code())
    };
    let response = match outcome {
        Ok(()) => EndTxnResponse::default(),
        Err(code) => EndTxnResponse::default().with_error_code(code),
    };
    if version >= IDS_IN_RESPONSE {
        response.with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
    } else {
        response
    }
}

/// Decides and completes the transaction; `Err`: the error code.
async fn end(broker: &Broker, id: &str, request: &EndTxnRequest) -> Result<(), i16> {
    let (producer_id, epoch, commit) =
        (request.producer_id.0, request.producer_epoch, request.committed);
    let now = now_ms();
    let decided = match transactions::high_watermarks(broker, id).await {
        Ok(marks) => {
            transactions::update(broker, id, |current| {
                current.end(producer_id, epoch, commit, &marks, now)
            })
            .await
        }
        Err(error) => Err(error.into()),
    };
    let outcome = match decided {
        Ok((prepared, true)) => transactions::complete(broker, id, &prepared).await,
        Ok((_, false)) => Ok(()),
        Err(failure) => Err(failure),
    };
    outcome.map_err(|failure| failure.code())
}
