//! InitProducerId: gives an idempotent producer a cluster-unique id, or bumps the epoch of the
//! id it already has (KIP-360, v3+), after which its sequences restart at 0.
//!
//! Sequence checks themselves happen in storage, inside each append (see
//! `skiff_storage::producers`), so they hold whichever broker a retry reaches.

pub(super) use kafka_protocol::messages::InitProducerIdRequest;
use kafka_protocol::messages::{InitProducerIdResponse, ProducerId};
use skiff_protocol::ErrorCode;

use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if request.transactional_id.is_some() {
        tracing::warn!("transactional producers are not supported yet");
        return response
            .with_error_code(ErrorCode::InvalidRequest.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let current = request.producer_id.0;
    let epoch = request.producer_epoch;
    // A producer that already has an id asks for a new epoch of it; at the last epoch it
    // gets a fresh id instead.
    if current >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return response.with_producer_id(ProducerId(current)).with_producer_epoch(epoch + 1);
    }
    match broker.producer_ids.next(&broker.storage).await {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(error) => response
            .with_error_code(errors::code_for(&error))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
