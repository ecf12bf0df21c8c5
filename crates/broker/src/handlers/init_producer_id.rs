//! InitProducerId.
//!
//! - Idempotent producers (no transactional id) get a cluster-unique id, or a new epoch of the
//!   id they have (KIP-360, v3+), after which their sequences restart at 0. Sequence checks
//!   happen in storage, inside each append (`skiff_storage::producers`).
//! - Transactional producers get the id stored for their transactional id with the next epoch:
//!   that fences older instances. An ongoing transaction of an older instance is aborted first
//!   (markers carry the bumped epoch, so the zombie is refused everywhere it wrote), and one left
//!   prepared by a dead broker is completed.
//!
//! ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED; without one,
//! IDEMPOTENT_WRITE on the cluster or WRITE on any topic, else CLUSTER_AUTHORIZATION_FAILED.

pub(super) use kafka_protocol::messages::InitProducerIdRequest;
use kafka_protocol::messages::{InitProducerIdResponse, ProducerId};
use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;

use super::{Operation, RequestContext, ResourceType};
use crate::transactions::state::{Status, Transaction, MAX_TIMEOUT_MS};
use crate::transactions::{self, now_ms, Failure};
use crate::{errors, Broker};

/// Rounds of "finish what is in the way, then bump" before giving up with a retriable error.
const ATTEMPTS: usize = 16;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: InitProducerIdRequest,
    context: &RequestContext<'_>,
) -> InitProducerIdResponse {
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
    let result = match authorize(context, transactional_id.as_deref()) {
        Ok(()) => assign(broker, transactional_id, &request).await,
        Err(code) => Err(code),
    };
    match result {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(code) => InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

/// Kafka's rule, checked before any id is handed out: a transactional producer needs WRITE on
/// its transactional id; an idempotent one IDEMPOTENT_WRITE on the cluster or WRITE on some
/// topic (it may produce there, so it may as well do so idempotently).
fn authorize(context: &RequestContext<'_>, transactional_id: Option<&str>) -> Result<(), i16> {
    match transactional_id {
        Some(id) if !context.allows(Operation::Write, ResourceType::TransactionalId, id) => {
            Err(ErrorCode::TransactionalIdAuthorizationFailed.code())
        }
        None if !context.allows_cluster(Operation::IdempotentWrite)
            && !context.allows_any(Operation::Write, ResourceType::Topic) =>
        {
            Err(ErrorCode::ClusterAuthorizationFailed.code())
        }
        _ => Ok(()),
    }
}

/// The producer id and epoch for an authorized request.
async fn assign(
    broker: &Broker,
    transactional_id: Option<String>,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), i16> {
    match transactional_id {
        None => idempotent(broker, request.producer_id.0, request.producer_epoch)
            .await
            .map_err(|error| errors::code_for(&error)),
        Some(id) if id.is_empty() => Err(ErrorCode::InvalidRequest.code()),
        Some(id) => transactional(broker, &id, request).await.map_err(|failure| failure.code()),
    }
}

async fn idempotent(broker: &Broker, current: i64, epoch: i16) -> Result<(i64, i16), StorageError> {
    // A producer that already has an id asks for a new epoch of it; at the last epoch it gets
    // a fresh id instead.
    if current >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return Ok((current, epoch + 1));
    }
    Ok((broker.producer_ids.next(&broker.storage).await?, 0))
}

async fn transactional(
    broker: &Broker,
    id: &str,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), Failure> {
    let timeout = request.transaction_timeout_ms;
    if timeout <= 0 || timeout > MAX_TIMEOUT_MS {
        return Err(Failure::Refused(ErrorCode::InvalidTransactionTimeout));
    }
    for _ in 0..ATTEMPTS {
        let now = now_ms();
        let Some(stored) = transactions::load(broker, id).await? else {
            let producer_id = broker.producer_ids.next(&broker.storage).await?;
            let fresh = Transaction::new(producer_id, timeout, now);
            match transactions::save(broker, id, &fresh, None).await {
                Ok(_) => return Ok((producer_id, 0)),
                Err(StorageError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        };
        let current = stored.transaction;
        // KIP-360: a producer naming its id and epoch must be the current instance.
        if request.producer_id.0 >= 0
            && (request.producer_id.0, request.producer_epoch)
                != (current.producer_id, current.producer_epoch)
        {
            return Err(Failure::Refused(ErrorCode::ProducerFenced));
        }
        match current.status {
            Status::Ongoing => {
                let aborting = current.fence_and_abort(now);
                match transactions::save(broker, id, &aborting, Some(stored.version)).await {
                    Ok(_) => transactions::complete(broker, id, &aborting).await?,
                    Err(StorageError::Conflict(_)) => {}
                    Err(other) => return Err(other.into()),
                }
            }
            Status::PrepareCommit | Status::PrepareAbort => {
                transactions::complete(broker, id, &current).await?;
            }
            Status::Empty | Status::CompleteCommit | Status::CompleteAbort => {
                let fresh_id = if current.epoch_exhausted() {
                    Some(broker.producer_ids.next(&broker.storage).await?)
                } else {
                    None
                };
                let next = current.next_epoch(timeout, fresh_id, now);
                match transactions::save(broker, id, &next, Some(stored.version)).await {
                    Ok(_) => {
                        tracing::info!(
                            transactional_id = id,
                            producer_id = next.producer_id,
                            epoch = next.producer_epoch,
                            "initialised transactional producer"
                        );
                        return Ok((next.producer_id, next.producer_epoch));
                    }
                    Err(StorageError::Conflict(_)) => {}
                    Err(other) => return Err(other.into()),
                }
            }
        }
    }
    Err(Failure::Refused(ErrorCode::ConcurrentTransactions))
}
