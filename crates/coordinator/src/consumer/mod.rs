//! KIP-848 consumer groups (`group.protocol=consumer`) as pure logic.
//!
//! The broker assigns partitions: members send ConsumerGroupHeartbeat with their subscription
//! and the partitions they own, and each answer moves them one step toward the group's target
//! assignment. A group is a value ([`ConsumerGroup`]) read from storage, changed by
//! [`ConsumerGroup::heartbeat`] or [`ConsumerGroup::tick`], and written back by
//! compare-and-set, like the classic [`crate::Group`]. No I/O and no clock: the time and the
//! topic metadata are arguments.
//!
//! Layout:
//! - `group`: the stored value ([`ConsumerGroup`], [`ConsumerMember`], [`Assignment`]), the
//!   settings ([`ConsumerConfig`]) and [`ConsumerGroup::tick`] (session and revocation
//!   timeouts).
//! - `heartbeat`: the ConsumerGroupHeartbeat transition: joins, epochs and fencing, static
//!   members, leaves, subscription and topic changes.
//! - `subscription`: topic names and RE2 regexes resolved against the caller's topic list.
//! - `target`: choosing the assignor and computing the target assignment.
//! - `assignors`: `uniform` (sticky, balanced) and `range`.
//! - `offsets`: the member-epoch checks of offset commits and fetches.
//! - `classic`: classic-protocol members inside a consumer-protocol group, moved by their
//!   JoinGroup, SyncGroup and Heartbeat while a group changes protocol.
//! - `migration`: turning a group with members from one protocol into the other.
//! - `reconcile`: one member's step toward its target (revoke first, then assign what others
//!   released).

mod assignors;
mod classic;
mod group;
mod heartbeat;
mod migration;
mod offsets;
mod reconcile;
mod subscription;
mod target;

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod tests;

pub use assignors::{assign, range, uniform, AssignorMember};
pub use classic::{ClassicSubscription, CONSUMER_PROTOCOL_TYPE};
pub use group::{
    Assignment, AssignorName, ClassicMetadata, ConsumerConfig, ConsumerGroup, ConsumerMember,
    MemberState, TopicId, TopicMetadata,
};
pub use heartbeat::{HeartbeatAnswer, HeartbeatRequest, WAITING_HEARTBEAT_INTERVAL_MS};

/// The member epoch of a heartbeat that joins (or rejoins) the group.
pub const JOIN_EPOCH: i32 = 0;
/// The member epoch of a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// The member epoch of a static member leaving for a while (it keeps its assignment until its
/// session expires).
pub const LEAVE_STATIC_EPOCH: i32 = -2;
