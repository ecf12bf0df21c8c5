//! The member checks of OffsetCommit, TxnOffsetCommit and OffsetFetch on a consumer-protocol
//! group (Kafka's `ConsumerGroup.validateOffsetCommit` / `validateOffsetFetch`): the member
//! epoch takes the place of the classic generation.

use super::group::ConsumerGroup;
use crate::GroupError;

impl ConsumerGroup {
    /// Whether an OffsetCommit may commit. A negative epoch commits only while the group has
    /// no members (the admin client, or a consumer that assigns itself); otherwise the member
    /// must exist and send its current epoch: a newer one is FENCED_MEMBER_EPOCH, an older one
    /// STALE_MEMBER_EPOCH (its heartbeat moved on while the commit was under way; the client
    /// retries with the new epoch). `epoch_api` says whether the request's version carries a
    /// member epoch (OffsetCommit v9+): a member of this protocol must use one
    /// (UNSUPPORTED_VERSION otherwise, as Kafka answers). A classic member (during a
    /// migration) commits with its member epoch as generation, with any version; a mismatch
    /// is ILLEGAL_GENERATION, as for classic groups.
    pub fn check_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        epoch_api: bool,
    ) -> Result<(), GroupError> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.member(member_id).ok_or(GroupError::UnknownMemberId)?;
        if !epoch_api && !member.is_classic() {
            return Err(GroupError::UnsupportedVersion);
        }
        self.check_member_epoch(member_id, member_epoch)
    }

    /// Whether a TxnOffsetCommit may commit: a producer that sends no group metadata (empty
    /// member id, epoch -1: the KIP-98 form) is not checked, as in Kafka; one that does is
    /// checked as an OffsetCommit, so a zombie that lost its partitions cannot commit.
    pub fn check_txn_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), GroupError> {
        if member_id.is_empty() && member_epoch < 0 {
            return Ok(());
        }
        self.check_member_epoch(member_id, member_epoch)
    }

    /// Whether an OffsetFetch (v9+) may read: without a member id and with a negative epoch
    /// it is an admin's read; otherwise the member must exist and send its current epoch, as
    /// for a commit.
    pub fn check_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), GroupError> {
        match member_id {
            None if member_epoch < 0 => Ok(()),
            None => Err(GroupError::UnknownMemberId),
            Some(member_id) => self.check_member_epoch(member_id, member_epoch),
        }
    }

    fn check_member_epoch(&self, member_id: &str, member_epoch: i32) -> Result<(), GroupError> {
        let member = self.member(member_id).ok_or(GroupError::UnknownMemberId)?;
        if member.is_classic() && member_epoch != member.member_epoch {
            // A classic member sends its epoch as its generation, and is told in its terms.
            return Err(GroupError::IllegalGeneration);
        }
        match member_epoch.cmp(&member.member_epoch) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Greater => Err(GroupError::FencedMemberEpoch),
            std::cmp::Ordering::Less => Err(GroupError::StaleMemberEpoch),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::ConsumerMember;

    fn group_with_member_at(epoch: i32) -> ConsumerGroup {
        let mut member = ConsumerMember::new("m1".into(), 0);
        member.member_epoch = epoch;
        ConsumerGroup { members: vec![member], ..ConsumerGroup::default() }
    }

    #[test]
    fn commits_need_the_members_current_epoch() {
        let group = group_with_member_at(5);
        assert_eq!(group.check_commit("m1", 5, true), Ok(()));
        assert_eq!(group.check_commit("m1", 4, true), Err(GroupError::StaleMemberEpoch));
        assert_eq!(group.check_commit("m1", 6, true), Err(GroupError::FencedMemberEpoch));
        assert_eq!(group.check_commit("m2", 5, true), Err(GroupError::UnknownMemberId));
        assert_eq!(group.check_commit("", -1, true), Err(GroupError::UnknownMemberId));
        assert_eq!(group.check_commit("m1", 5, false), Err(GroupError::UnsupportedVersion));
    }

    #[test]
    fn an_empty_group_takes_commits_without_a_member() {
        let group = ConsumerGroup::default();
        assert_eq!(group.check_commit("", -1, false), Ok(()));
        assert_eq!(group.check_commit("gone", 3, true), Err(GroupError::UnknownMemberId));
    }

    #[test]
    fn transactional_commits_without_group_metadata_are_not_checked() {
        let group = group_with_member_at(5);
        assert_eq!(group.check_txn_commit("", -1), Ok(()));
        assert_eq!(group.check_txn_commit("m1", 4), Err(GroupError::StaleMemberEpoch));
        assert_eq!(group.check_txn_commit("zombie", 5), Err(GroupError::UnknownMemberId));
    }

    #[test]
    fn fetches_naming_a_member_need_its_epoch() {
        let group = group_with_member_at(5);
        assert_eq!(group.check_fetch(None, -1), Ok(()));
        assert_eq!(group.check_fetch(Some("m1"), 5), Ok(()));
        assert_eq!(group.check_fetch(Some("m1"), 4), Err(GroupError::StaleMemberEpoch));
        assert_eq!(group.check_fetch(Some("m1"), 6), Err(GroupError::FencedMemberEpoch));
        assert_eq!(group.check_fetch(None, 5), Err(GroupError::UnknownMemberId));
        assert_eq!(group.check_fetch(Some("m9"), 5), Err(GroupError::UnknownMemberId));
    }
}
