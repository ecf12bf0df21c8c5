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

pub(crate) const NONE: i16 = 0;
