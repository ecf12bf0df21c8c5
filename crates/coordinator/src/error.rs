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
    /// KIP-848: the member's epoch is not the one the group has (FENCED_MEMBER_EPOCH, 110);
    /// it must give up its partitions and join again with epoch 0.
    #[error("member epoch fenced")]
    FencedMemberEpoch,
    /// KIP-848: a static member joined while the instance id's current member has not left
    /// (UNRELEASED_INSTANCE_ID, 111).
    #[error("instance id not released by its current member")]
    UnreleasedInstanceId,
    /// KIP-848: the requested server assignor is not one the broker has (UNSUPPORTED_ASSIGNOR,
    /// 112).
    #[error("unsupported assignor")]
    UnsupportedAssignor,
    /// KIP-848: the subscribed regex does not compile (INVALID_REGULAR_EXPRESSION, 128).
    #[error("invalid regular expression")]
    InvalidRegularExpression,
    /// KIP-848: an offset commit or fetch with an older member epoch than the member's
    /// (STALE_MEMBER_EPOCH, 113); the member retries once its heartbeat gave it the new one.
    #[error("stale member epoch")]
    StaleMemberEpoch,
    /// A consumer-protocol member committing with an OffsetCommit version older than 9, which
    /// has no member epoch (UNSUPPORTED_VERSION, 35).
    #[error("offset commit version without member epochs")]
    UnsupportedVersion,
    /// A classic request on a consumer-protocol group, or the reverse, that no conversion
    /// applies to (GROUP_ID_NOT_FOUND, 69: "not a classic group" / "not a consumer group").
    #[error("group uses the other protocol")]
    OtherProtocol,
    /// A malformed request (INVALID_REQUEST, 42).
    #[error("invalid request")]
    InvalidRequest,
    /// `group.consumer.max.size` reached (GROUP_MAX_SIZE_REACHED, 81).
    #[error("group max size reached")]
    GroupMaxSizeReached,
    /// The stored value does not decode; never silently replaced.
    #[error("stored group does not decode")]
    Corrupt,
}
