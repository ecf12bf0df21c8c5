use thiserror::Error;

/// Errors every engine reports in the same terms; handlers map them to Kafka codes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The topic, partition or key does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Creating something that already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A compare-and-set lost: the stored version was not the expected one.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request makes no sense for the stored state (e.g. shrinking partitions).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An offset outside `[log start, high watermark]`.
    #[error("offset {offset} out of range [{log_start}, {high}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, high: i64 },
    /// An idempotent or transactional producer with an epoch older than the stored one.
    #[error("fenced: {0}")]
    Fenced(String),
    /// An idempotent producer's batch does not follow its previous sequence.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// The backing store cannot be reached right now; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode; never silently skipped.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
