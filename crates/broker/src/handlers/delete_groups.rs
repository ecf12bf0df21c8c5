//! DeleteGroups: only a group without members (Empty, or known only by its committed offsets)
//! can be deleted; its stored state goes by compare-and-set (a member joining meanwhile makes
//! it fail and re-check), then its offsets.
//!
//! ACLs: DELETE on each group, else GROUP_AUTHORIZATION_FAILED for it (and it is left alone).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
pub(super) use kafka_protocol::messages::DeleteGroupsRequest;
use kafka_protocol::messages::{DeleteGroupsResponse, GroupId};
use skiff_coordinator::{AnyGroup, GroupState};
use skiff_protocol::ErrorCode;
use skiff_storage::StorageError;

use super::{Operation, RequestContext, ResourceType};
use crate::{errors, groups, Broker};

/// Lost races with joining members before giving up with a retriable error.
const MAX_ATTEMPTS: usize = 16;

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteGroupsRequest,
    context: &RequestContext<'_>,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let code = if context.allows(Operation::Delete, ResourceType::Group, &group_id) {
            delete(broker, &group_id).await
        } else {
            ErrorCode::GroupAuthorizationFailed.code()
        };
        results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}

async fn delete(broker: &Broker, group_id: &GroupId) -> i16 {
    if group_id.is_empty() {
        return ErrorCode::InvalidGroupId.code();
    }
    for _ in 0..MAX_ATTEMPTS {
        let stored = match groups::view(broker, group_id).await {
            Ok(stored) => stored,
            Err(failure) => return failure.code(),
        };
        let empty = match &stored.group {
            AnyGroup::Classic(group) => matches!(group.state, GroupState::Empty | GroupState::Dead),
            AnyGroup::Consumer(group) => group.members.is_empty(),
        };
        if !empty {
            return ErrorCode::NonEmptyGroup.code();
        }
        let Some(version) = stored.version else {
            return delete_offsets(broker, group_id, false).await;
        };
        match broker.storage.state.delete(&groups::key(group_id), version).await {
            Ok(()) | Err(StorageError::NotFound(_)) => {
                broker.notify_group_changed();
                return delete_offsets(broker, group_id, true).await;
            }
            Err(StorageError::Conflict(_)) => continue,
            Err(error) => return errors::coordinator_code_for(&error),
        }
    }
    ErrorCode::CoordinatorNotAvailable.code()
}

/// Deletes the group's offsets; a group with neither state nor offsets was not found.
async fn delete_offsets(broker: &Broker, group_id: &str, had_state: bool) -> i16 {
    let offsets = &broker.storage.offsets;
    let result = async {
        let existed = !offsets.committed_offsets(group_id, None).await?.is_empty();
        offsets.delete_offsets(group_id, None).await?;
        Ok::<bool, StorageError>(existed)
    }
    .await;
    match result {
        Ok(existed) if existed || had_state => errors::NONE,
        Ok(_) => ErrorCode::GroupIdNotFound.code(),
        Err(error) => errors::coordinator_code_for(&error),
    }
}
