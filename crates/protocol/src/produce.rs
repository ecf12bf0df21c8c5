//! Produce answers that the broker and the proxy build the same way: a partition refused for
//! some of its records, or as a whole.

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::batch::BatchError;
use crate::ErrorCode;

/// Refuses a partition's batch because of some of its records, naming each in `record_errors`
/// (Produce v8+, KIP-467) with its index within its batch: clients fail exactly those records
/// with INVALID_RECORD and the rest of the batch as "another record failed", so a retry
/// without them can succeed. The partition's message names the first.
pub fn refuse_records(index: i32, invalid: &[(i32, String)]) -> PartitionProduceResponse {
    let record_errors = invalid
        .iter()
        .map(|(batch_index, reason)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(*batch_index)
                .with_batch_index_error_message(Some(StrBytes::from_string(reason.clone())))
        })
        .collect();
    let first = invalid.first().map(|(at, reason)| format!("record {at}: {reason}"));
    let message =
        format!("{} record(s) of the batch refused; {}", invalid.len(), first.unwrap_or_default());
    refuse_partition(index, ErrorCode::InvalidRecord, message).with_record_errors(record_errors)
}

/// Refuses a partition's batch as a whole.
pub fn refuse_partition(index: i32, code: ErrorCode, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

/// The error code of a batch that cannot be read.
pub fn code_for_batch_error(error: &BatchError) -> ErrorCode {
    match error {
        BatchError::TooLarge { .. } => ErrorCode::RecordListTooLarge,
        BatchError::UnsupportedMagic(_) => ErrorCode::UnsupportedForMessageFormat,
        BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
        _ => ErrorCode::InvalidRecord,
    }
}
