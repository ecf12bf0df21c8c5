//! The registry's errors, each carrying the Confluent error code its REST clients expect.

use skiff_storage::StorageError;
use thiserror::Error;

/// Everything a registry operation can refuse or fail with. The HTTP layer turns each variant
/// into Confluent's `{"error_code": ..., "message": ...}` with [`RegistryError::code`] and
/// [`RegistryError::http_status`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Version {version} of subject '{subject}' was soft deleted. Set permanent=true to delete permanently")]
    VersionSoftDeleted { subject: String, version: i32 },
    #[error("Version {version} of subject '{subject}' was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted { subject: String, version: i32 },
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotFound(String),
    /// The new schema breaks the subject's compatibility level; the messages say how.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {}", .messages.join("; "))]
    Incompatible { subject: String, messages: Vec<String> },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel(String),
    #[error("Invalid mode. Valid values are READWRITE, READONLY and IMPORT")]
    InvalidMode(String),
    /// A write while the subject (or the registry) is in READONLY mode, or an import outside
    /// IMPORT mode.
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("One or more references exist to the schema {{subject={subject}, version={version}}}")]
    ReferenceExists { subject: String, version: i32 },
    /// A request body that is not what the route expects.
    #[error("{0}")]
    BadRequest(String),
    /// A request body over the documented limit.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The storage engine failed or stored something that does not decode; retriable when
    /// the engine was unavailable.
    #[error("Error in the backend data store: {0}")]
    Store(StorageError),
}

impl RegistryError {
    /// Confluent's error code.
    pub fn code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound(_) => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::VersionSoftDeleted { .. } => 40406,
            Self::VersionNotSoftDeleted { .. } => 40407,
            Self::SubjectConfigNotFound(_) => 40408,
            Self::SubjectModeNotFound(_) => 40409,
            Self::Incompatible { .. } => 409,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibilityLevel(_) => 42203,
            Self::InvalidMode(_) => 42204,
            Self::OperationNotPermitted(_) => 42205,
            Self::ReferenceExists { .. } => 42206,
            Self::BadRequest(_) => 422,
            Self::TooLarge(_) => 413,
            Self::Store(_) => 50001,
        }
    }

    /// The HTTP status Confluent answers this error with.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            40401..=40499 => 404,
            409 => 409,
            413 => 413,
            422 | 42200..=42299 => 422,
            _ => 500,
        }
    }
}

impl From<StorageError> for RegistryError {
    fn from(error: StorageError) -> Self {
        Self::Store(error)
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
