use thiserror::Error;

/// Why a group request is refused, named after the Kafka error each one becomes at the
/// handler edge.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("rebalance in progress")]
    RebalanceInProgress,
    #[error("static member fenced by a newer instance")]
    FencedInstanceId,
    #[error("inconsistent group protocol")]
    InconsistentGroupProtocol,
    /// KIP-394: a new member must rejoin with the member id it is given.
    #[error("member id required")]
    MemberIdRequired,
    #[error("session timeout outside the allowed range")]
    InvalidSessionTimeout,
    /// The group is being deleted.
    #[error("coordinator not available")]
    CoordinatorNotAvailable,
    #[error("group has active members")]
    NonEmptyGroup,
    /// The stored value does not decode; never silently replaced.
    #[error("stored group does not decode")]
    Corrupt,
}
