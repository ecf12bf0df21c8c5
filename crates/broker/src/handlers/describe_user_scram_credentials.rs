//! DescribeUserScramCredentials: which SCRAM mechanisms each user has a credential for, and
//! with how many iterations (never the salt or keys). No user list (null or empty) means every
//! user, as Kafka reads it.
//!
//! ACLs: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use std::collections::HashSet;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
pub(super) use kafka_protocol::messages::DescribeUserScramCredentialsRequest;
use kafka_protocol::messages::DescribeUserScramCredentialsResponse;
use skiff_auth::{User, Users};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
    context: &RequestContext<'_>,
) -> DescribeUserScramCredentialsResponse {
    if !context.allows_cluster(Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes("not authorized to describe users")));
    }
    let users = broker.users();
    let results = match request.users.filter(|names| !names.is_empty()) {
        None => users
            .list()
            .await
            .map(|all| all.into_iter().map(|(name, user)| described(&name, &user)).collect()),
        Some(names) => named(&users, names.iter().map(|name| name.name.as_str()).collect()).await,
    };
    match results {
        Ok(results) => DescribeUserScramCredentialsResponse::default().with_results(results),
        Err(error) => DescribeUserScramCredentialsResponse::default()
            .with_error_code(errors::code_for(&error))
            .with_error_message(Some(str_bytes(error.to_string()))),
    }
}

async fn named(
    users: &Users,
    names: Vec<&str>,
) -> Result<Vec<DescribeUserScramCredentialsResult>, skiff_storage::StorageError> {
    let mut seen = HashSet::new();
    let duplicated: HashSet<&str> =
        names.iter().copied().filter(|name| !seen.insert(*name)).collect();
    let mut results = Vec::new();
    let mut answered = HashSet::new();
    for name in names {
        if !answered.insert(name) {
            continue;
        }
        let result = if duplicated.contains(name) {
            failed(name, ErrorCode::DuplicateResource, "the user is named more than once")
        } else {
            match users.get(name).await? {
                Some(user) if !user.scram.is_empty() => described(name, &user),
                _ => failed(
                    name,
                    ErrorCode::ResourceNotFound,
                    "Attempt to describe a user credential that does not exist",
                ),
            }
        };
        results.push(result);
    }
    Ok(results)
}

fn described(name: &str, user: &User) -> DescribeUserScramCredentialsResult {
    let infos = user
        .mechanisms()
        .into_iter()
        .map(|(mechanism, iterations)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.kafka_code())
                .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
        })
        .collect();
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(name))
        .with_credential_infos(infos)
}

fn failed(name: &str, code: ErrorCode, message: &str) -> DescribeUserScramCredentialsResult {
    DescribeUserScramCredentialsResult::default()
        .with_user(str_bytes(name))
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(format!("{message}: {name}"))))
}
