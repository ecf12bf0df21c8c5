//! ACLs on subjects: the cluster's Kafka ACLs (`--authorizer acl`) decide who may read and
//! change which schemas, so one set of rules covers a topic's records and its schemas.
//!
//! Kafka's ACL model has no subject resource, and admin clients could not manage one; a subject
//! is instead checked as the topic it belongs to under Confluent's default naming
//! (TopicNameStrategy: `<topic>-value`, `<topic>-key`), like Confluent's topic-based registry
//! authorization. A subject of another name (RecordNameStrategy) is checked on the cluster.
//!
//! | request | needs |
//! |---|---|
//! | read a subject (versions, schemas, look-up, compatibility check, referencedby) | DESCRIBE on the topic (READ, WRITE, ALTER, DELETE imply it) |
//! | register a schema | WRITE on the topic |
//! | delete versions or a subject | ALTER on the topic |
//! | a subject's compatibility or mode: read / change | DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic |
//! | the global compatibility or mode: read / change | DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster |
//! | a schema by id | DESCRIBE on a topic of one of the subjects using it |
//! | list subjects, subjects or versions of a schema id | answered with the describable ones only |
//! | a subject not named `<topic>-key`/`-value` | the same operation on the cluster (WRITE as ALTER) |
//!
//! Every route is decided here, in one middleware, from the route's template and method; a
//! route missing from the table needs ALTER on the cluster. The principal is the basic-auth user
//! (`User:<name>`), or `User:ANONYMOUS` without `--schema-registry-basic-auth`. A refusal is
//! HTTP 403 with Confluent's error code 40301.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::RequestPartsExt;
use skiff_auth::acl::model::CLUSTER_NAME;
use skiff_auth::acl::{Authorizer, Operation, ResourceType};
use skiff_auth::Principal;

use crate::registry::Registry;

/// Largest answer the middleware reads back to filter (lists of subjects).
const MAX_FILTERED_BYTES: usize = 64 * 1024 * 1024;

/// The future of [`AclSource::authorizer`].
pub type AuthorizerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Authorizer>, String>> + Send + 'a>>;

/// Where the registry gets the cluster's ACLs: the broker's snapshot, so the registry and the
/// Kafka listeners decide with the same rules at the same moment.
pub trait AclSource: Send + Sync {
    fn authorizer(&self) -> AuthorizerFuture<'_>;
}

/// What the middleware needs: the ACLs and, for schema ids, the registry.
pub(super) struct Guard {
    pub(super) acls: Arc<dyn AclSource>,
    pub(super) registry: Arc<Registry>,
}

/// What a route needs, by method and template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Any client that got past authentication.
    Open,
    /// The operation on the path's `{subject}`.
    Subject(Operation),
    /// The operation on the cluster.
    Cluster(Operation),
    /// DESCRIBE on some subject using the path's schema `{id}`.
    SchemaId,
    /// The answer is a JSON list of subject names or of `{"subject": ..}` objects: only those
    /// the principal may describe are kept.
    Filtered,
}

fn rule(method: &Method, route: &str) -> Rule {
    use Operation::*;
    let reading = method == Method::GET;
    match (method.as_str(), route) {
        (_, "/" | "/schemas/types") => Rule::Open,
        ("GET", "/subjects" | "/schemas/ids/{id}/subjects" | "/schemas/ids/{id}/versions") => {
            Rule::Filtered
        }
        ("GET", "/schemas/ids/{id}" | "/schemas/ids/{id}/schema") => Rule::SchemaId,
        ("POST", "/subjects/{subject}/versions") => Rule::Subject(Write),
        ("DELETE", "/subjects/{subject}" | "/subjects/{subject}/versions/{version}") => {
            Rule::Subject(Alter)
        }
        (_, "/config" | "/mode") if reading => Rule::Cluster(DescribeConfigs),
        (_, "/config" | "/mode") => Rule::Cluster(AlterConfigs),
        (_, "/config/{subject}" | "/mode/{subject}") if reading => Rule::Subject(DescribeConfigs),
        (_, "/config/{subject}" | "/mode/{subject}") => Rule::Subject(AlterConfigs),
        ("GET" | "POST", route)
            if route.starts_with("/subjects/{subject}")
                || route.starts_with("/compatibility/subjects/{subject}") =>
        {
            Rule::Subject(Describe)
        }
        _ => Rule::Cluster(Alter),
    }
}

/// The resource a subject is checked as, and the operation on it.
fn resource(subject: &str, operation: Operation) -> (ResourceType, &str, Operation) {
    let topic = ["-value", "-key"]
        .iter()
        .find_map(|suffix| subject.strip_suffix(suffix))
        .filter(|topic| !topic.is_empty());
    match topic {
        Some(topic) => (ResourceType::Topic, topic, operation),
        // The cluster has no WRITE: changing schemas is altering it.
        None if operation == Operation::Write => {
            (ResourceType::Cluster, CLUSTER_NAME, Operation::Alter)
        }
        None => (ResourceType::Cluster, CLUSTER_NAME, operation),
    }
}

/// Who asks, from where, and the rules to decide with.
struct Asker {
    principal: Principal,
    host: IpAddr,
    authorizer: Arc<Authorizer>,
}

impl Asker {
    fn may(&self, operation: Operation, subject: &str) -> bool {
        let (resource_type, name, operation) = resource(subject, operation);
        self.authorizer.allows(&self.principal, self.host, operation, resource_type, name)
    }
}

/// The middleware: decides the request by its route, or filters its answer.
pub(super) async fn authorize(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let route = parts.extensions.get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let rule = rule(&parts.method, route.as_deref().unwrap_or(""));
    let params: HashMap<String, String> =
        parts.extract::<Path<HashMap<String, String>>>().await.map(|Path(p)| p).unwrap_or_default();
    let principal =
        parts.extensions.get::<Principal>().cloned().unwrap_or_else(Principal::anonymous);
    let host = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let request = Request::from_parts(parts, body);
    if rule == Rule::Open {
        return next.run(request).await;
    }
    let authorizer = match guard.acls.authorizer().await {
        Ok(authorizer) => authorizer,
        Err(error) => {
            tracing::warn!(%error, "schema registry: the ACLs cannot be read");
            return super::error(
                StatusCode::SERVICE_UNAVAILABLE,
                50003,
                "the ACLs cannot be read right now",
            );
        }
    };
    let asker = Asker { principal, host, authorizer };
    let subject = params.get("subject").map_or("", String::as_str);
    let allowed = match rule {
        Rule::Open | Rule::Filtered => true,
        Rule::Subject(operation) => asker.may(operation, subject),
        Rule::Cluster(operation) => asker.authorizer.allows(
            &asker.principal,
            asker.host,
            operation,
            ResourceType::Cluster,
            CLUSTER_NAME,
        ),
        Rule::SchemaId => schema_id_readable(&guard, &asker, params.get("id")).await,
    };
    if !allowed {
        return denied(&asker, rule, subject);
    }
    let response = next.run(request).await;
    if rule == Rule::Filtered {
        return keep_describable(&asker, response).await;
    }
    response
}

/// Whether some subject using the schema id may be described. An id no subject uses (or no id
/// at all) goes on to the handler, which answers 404 or 422.
async fn schema_id_readable(guard: &Guard, asker: &Asker, id: Option<&String>) -> bool {
    let Some(id) = id.and_then(|id| id.parse::<i32>().ok()) else { return true };
    match guard.registry.subject_versions_of(id, true).await {
        Ok(versions) if versions.is_empty() => true,
        Ok(versions) => versions.iter().any(|(subject, _)| asker.may(Operation::Describe, subject)),
        // The handler meets the same storage failure and answers it.
        Err(_) => true,
    }
}

fn denied(asker: &Asker, rule: Rule, subject: &str) -> Response {
    let what = match rule {
        Rule::Subject(operation) => {
            let (resource_type, name, operation) = resource(subject, operation);
            format!("{operation:?} on {resource_type:?} {name} (subject {subject})")
        }
        Rule::Cluster(operation) => format!("{operation:?} on the cluster"),
        _ => "Describe on the subjects using this schema".to_owned(),
    };
    tracing::debug!(principal = %asker.principal, %what, "schema registry: denied by ACLs");
    let message = format!("{} is denied {what}", asker.principal);
    super::error(StatusCode::FORBIDDEN, 40301, &message)
}

/// Keeps the entries of a JSON list answer that the principal may describe: subject names, or
/// objects with a `subject` field. Other answers (errors) pass unchanged.
async fn keep_describable(asker: &Asker, response: Response) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FILTERED_BYTES).await else {
        return super::error(StatusCode::INTERNAL_SERVER_ERROR, 50001, "answer too large");
    };
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let kept: Vec<serde_json::Value> = entries
        .into_iter()
        .filter(|entry| {
            let subject = entry.as_str().or_else(|| entry.get("subject")?.as_str());
            subject.is_some_and(|subject| asker.may(Operation::Describe, subject))
        })
        .collect();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::Value::Array(kept).to_string();
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_checked_as_their_topic_or_the_cluster() {
        let topic = resource("orders-value", Operation::Write);
        assert_eq!(topic, (ResourceType::Topic, "orders", Operation::Write));
        assert_eq!(resource("a-b-key", Operation::Describe).1, "a-b");
        let record = resource("com.example.Order", Operation::Write);
        assert_eq!(record, (ResourceType::Cluster, CLUSTER_NAME, Operation::Alter));
        assert_eq!(resource("-value", Operation::Describe).0, ResourceType::Cluster);
    }

    #[test]
    fn every_route_has_a_rule_and_unknown_ones_need_alter_on_the_cluster() {
        use Operation::*;
        let cases = [
            (Method::GET, "/subjects", Rule::Filtered),
            (Method::POST, "/subjects/{subject}/versions", Rule::Subject(Write)),
            (Method::GET, "/subjects/{subject}/versions", Rule::Subject(Describe)),
            (Method::POST, "/subjects/{subject}", Rule::Subject(Describe)),
            (Method::DELETE, "/subjects/{subject}", Rule::Subject(Alter)),
            (Method::DELETE, "/subjects/{subject}/versions/{version}", Rule::Subject(Alter)),
            (Method::GET, "/subjects/{subject}/versions/{version}/schema", Rule::Subject(Describe)),
            (Method::GET, "/schemas/ids/{id}", Rule::SchemaId),
            (Method::GET, "/schemas/ids/{id}/versions", Rule::Filtered),
            (Method::GET, "/schemas/types", Rule::Open),
            (Method::GET, "/config", Rule::Cluster(DescribeConfigs)),
            (Method::PUT, "/mode", Rule::Cluster(AlterConfigs)),
            (Method::DELETE, "/config/{subject}", Rule::Subject(AlterConfigs)),
            (Method::GET, "/mode/{subject}", Rule::Subject(DescribeConfigs)),
            (
                Method::POST,
                "/compatibility/subjects/{subject}/versions/{version}",
                Rule::Subject(Describe),
            ),
            (Method::PATCH, "/something/new", Rule::Cluster(Alter)),
        ];
        for (method, route, expected) in cases {
            assert_eq!(rule(&method, route), expected, "{method} {route}");
        }
    }
}
