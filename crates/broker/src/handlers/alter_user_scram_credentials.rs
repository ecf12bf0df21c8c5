//! AlterUserScramCredentials: adds, replaces and deletes users' SCRAM credentials (what
//! `kafka-configs --alter --add-config 'SCRAM-SHA-256=[password=...]'` and admin clients'
//! `alter_user_scram_credentials` send). The client sends the salt and the salted password,
//! never the password; the broker stores the keys derived from them.
//!
//! One result per user: if any alteration of a user is invalid, none of that user's is made
//! (Kafka's rule), while other users' go ahead.
//!
//! ACLs: ALTER on the cluster, else every user's result is CLUSTER_AUTHORIZATION_FAILED.

use std::collections::HashSet;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
pub(super) use kafka_protocol::messages::AlterUserScramCredentialsRequest;
use kafka_protocol::messages::AlterUserScramCredentialsResponse;
use skiff_auth::{ScramCredential, ScramMechanism, Users};
use skiff_protocol::ErrorCode;

use super::{str_bytes, Operation, RequestContext};
use crate::{errors, Broker};

/// One requested change of one user.
enum Alteration {
    Upsert(ScramMechanism, ScramCredential),
    Delete(ScramMechanism),
}

/// Why a user's alterations are refused.
struct Refused(i16, String);

pub(super) async fn handle(
    broker: &Broker,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
    context: &RequestContext<'_>,
) -> AlterUserScramCredentialsResponse {
    let allowed = context.allows_cluster(Operation::Alter);
    let users = broker.users();
    let mut names: Vec<&str> = Vec::new();
    let named = request
        .deletions
        .iter()
        .map(|deletion| deletion.name.as_str())
        .chain(request.upsertions.iter().map(|upsertion| upsertion.name.as_str()));
    for name in named {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut results = Vec::new();
    for name in names {
        let outcome = match alterations(&request, name) {
            Ok(_) if !allowed => Err(Refused(
                ErrorCode::ClusterAuthorizationFailed.code(),
                "not authorized to alter users".into(),
            )),
            Ok(alterations) => apply(&users, name, alterations).await,
            Err(refused) => Err(refused),
        };
        let result = AlterUserScramCredentialsResult::default().with_user(str_bytes(name));
        results.push(match outcome {
            Ok(()) => result,
            Err(Refused(code, message)) => {
                result.with_error_code(code).with_error_message(Some(str_bytes(message)))
            }
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// The user's alterations, checked: a known mechanism, each mechanism once, a non-empty
/// name, iterations within Kafka's bounds, a salted password of the hash's length.
fn alterations(
    request: &AlterUserScramCredentialsRequest,
    name: &str,
) -> Result<Vec<Alteration>, Refused> {
    if name.is_empty() {
        return Err(Refused(
            ErrorCode::UnacceptableCredential.code(),
            "Username must not be empty".into(),
        ));
    }
    let mechanism = |code: i8| {
        ScramMechanism::from_kafka_code(code).ok_or_else(|| {
            Refused(
                ErrorCode::UnsupportedSaslMechanism.code(),
                format!("Unknown SCRAM mechanism {code}"),
            )
        })
    };
    let mut alterations = Vec::new();
    let mut mentioned = HashSet::new();
    for deletion in request.deletions.iter().filter(|deletion| deletion.name.as_str() == name) {
        let mechanism = mechanism(deletion.mechanism)?;
        if !mentioned.insert(mechanism) {
            return Err(duplicate(name, mechanism));
        }
        alterations.push(Alteration::Delete(mechanism));
    }
    for upsertion in request.upsertions.iter().filter(|upsertion| upsertion.name.as_str() == name) {
        let mechanism = mechanism(upsertion.mechanism)?;
        if !mentioned.insert(mechanism) {
            return Err(duplicate(name, mechanism));
        }
        if !ScramCredential::iterations_acceptable(i64::from(upsertion.iterations)) {
            return Err(Refused(
                ErrorCode::UnacceptableCredential.code(),
                format!(
                    "Iterations must be between {} and {} for {mechanism}",
                    ScramMechanism::MIN_ITERATIONS,
                    ScramMechanism::MAX_ITERATIONS
                ),
            ));
        }
        if upsertion.salt.is_empty() || upsertion.salted_password.len() != mechanism.key_length() {
            return Err(Refused(
                ErrorCode::UnacceptableCredential.code(),
                format!(
                    "A {mechanism} credential needs a salt and a salted password of {} bytes",
                    mechanism.key_length()
                ),
            ));
        }
        let iterations =
            u32::try_from(upsertion.iterations).unwrap_or(ScramMechanism::MIN_ITERATIONS);
        let credential = ScramCredential::from_salted_password(
            mechanism,
            upsertion.salt.to_vec(),
            &upsertion.salted_password,
            iterations,
        );
        alterations.push(Alteration::Upsert(mechanism, credential));
    }
    Ok(alterations)
}

fn duplicate(name: &str, mechanism: ScramMechanism) -> Refused {
    Refused(
        ErrorCode::DuplicateResource.code(),
        format!(
            "A user credential cannot be altered twice in the same request: {name} {mechanism}"
        ),
    )
}

/// Makes the user's alterations: deletions first (each must find a credential), then
/// upsertions.
async fn apply(users: &Users, name: &str, alterations: Vec<Alteration>) -> Result<(), Refused> {
    let storage =
        |error: skiff_storage::StorageError| Refused(errors::code_for(&error), error.to_string());
    let user = users.get(name).await.map_err(storage)?.unwrap_or_default();
    for alteration in &alterations {
        if let Alteration::Delete(mechanism) = alteration {
            if user.credential(*mechanism).is_none() {
                return Err(Refused(ErrorCode::ResourceNotFound.code(),
                    format!("Attempt to delete a user credential that does not exist: {name} {mechanism}"),
                ));
            }
        }
    }
    for alteration in alterations {
        match alteration {
            Alteration::Delete(mechanism) => {
                users.remove(name, mechanism).await.map_err(storage)?;
            }
            Alteration::Upsert(mechanism, credential) => {
                users.upsert(name, mechanism, credential).await.map_err(storage)?;
            }
        }
    }
    Ok(())
}
