//! Storage errors in Kafka's terms, chosen so clients do the right thing: retry what may
//! succeed later, give up on what never will.

use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;

/// The Kafka error code for a storage failure on a partition or topic.
pub(crate) fn code_for(error: &StorageError) -> i16 {
    let code = match error {
        StorageError::NotFound(_) => ErrorCode::UnknownTopicOrPartition,
        StorageError::AlreadyExists(_) => ErrorCode::TopicAlreadyExists,
        StorageError::InvalidArgument(_) => ErrorCode::InvalidRequest,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::Conflict(_) | StorageError::Unavailable(_) => ErrorCode::KafkaStorageError,
        StorageError::Corrupt(_) => ErrorCode::CorruptMessage,
        StorageError::Fenced(_) => ErrorCode::InvalidProducerEpoch,
        StorageError::OutOfOrderSequence(_) => ErrorCode::OutOfOrderSequenceNumber,
        _ => ErrorCode::UnknownServerError,
    };
    code.code()
}

/// The Kafka error code for a storage failure behind a group coordinator request (OffsetCommit,
/// DeleteGroups, OffsetDelete, ListGroups).
/// Storage that cannot be reached is COORDINATOR_NOT_AVAILABLE there, as Kafka answers when its
/// offsets log cannot be written: clients find the coordinator again and retry the commit.
/// KAFKA_STORAGE_ERROR is retried by producers only; a consumer gives up on a commit with it.
pub(crate) fn coordinator_code_for(error: &StorageError) -> i16 {
    match error {
        StorageError::Conflict(_) | StorageError::Unavailable(_) => {
            ErrorCode::CoordinatorNotAvailable.code()
        }
        other => code_for(other),
    }
}

/// The Kafka error code for committed offsets that cannot be read right now (OffsetFetch):
/// COORDINATOR_LOAD_IN_PROGRESS, what Kafka answers while it loads a group's offsets. librdkafka
/// retries it in place; a request-level COORDINATOR_NOT_AVAILABLE instead leaves the assigned
/// partitions waiting for their offsets forever, the consumer alive but fetching nothing
/// (confluentinc/librdkafka#5586).
pub(crate) fn offsets_unreadable() -> i16 {
    ErrorCode::CoordinatorLoadInProgress.code()
}

pub(crate) const NONE: i16 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_storage_is_retriable_for_producers_and_for_committers() {
        let down = StorageError::Unavailable("injected".into());
        assert_eq!(code_for(&down), ErrorCode::KafkaStorageError.code());
        assert_eq!(coordinator_code_for(&down), ErrorCode::CoordinatorNotAvailable.code());
        let missing = StorageError::NotFound("t".into());
        assert_eq!(coordinator_code_for(&missing), ErrorCode::UnknownTopicOrPartition.code());
    }
}
