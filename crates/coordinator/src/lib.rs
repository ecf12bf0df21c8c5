//! Kafka consumer groups as pure logic: the classic protocol, and the consumer protocol of
//! KIP-848 in [`consumer`].
//!
//! Brokers keep no state, so a group is a value: [`Group`] is read from storage, changed by one
//! of the transitions here, and written back by compare-and-set. Nothing in this crate does I/O
//! or reads a clock: every transition takes `now_ms` from its caller, which is what lets any
//! broker apply it and lets tests drive time by hand.
//!
//! Layout:
//! - `group`: the stored value ([`Group`], [`Member`], [`GroupState`]), time-driven changes
//!   ([`Group::tick`]: session expiry, rebalance deadlines) and completing a rebalance.
//! - `join`: JoinGroup, including KIP-394 member ids and KIP-345 static membership, and what a
//!   waiting JoinGroup sees when it re-reads the group ([`Group::poll_join`]).
//! - `members`: SyncGroup, Heartbeat, LeaveGroup and the member checks of OffsetCommit.
//! - `kind`: the stored value of either kind ([`AnyGroup`]), told apart by its `type`.
//! - `hex`: byte fields stored as hex, so the JSON stays readable in SQL.
//! - `consumer`: KIP-848 consumer-protocol groups (ConsumerGroupHeartbeat, server-side
//!   assignors, reconciliation), the same kind of pure transitions over a stored value.

pub mod consumer;
mod error;
mod group;
mod hex;
mod join;
mod kind;
mod members;

#[cfg(test)]
mod tests;

pub use error::GroupError;
pub use group::{Group, GroupState, Limits, Member, PendingMember, Protocol};
pub use join::{AnswerMember, JoinAnswer, JoinOutcome, JoinPoll, JoinRequest};
pub use kind::{AnyGroup, CLASSIC, CONSUMER};
pub use members::{LeaveMember, SyncOutcome, SyncPoll, SyncRequest};
