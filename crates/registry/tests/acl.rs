//! ACLs on subjects through the real router (tower `oneshot`), with basic authentication
//! naming the principal: each subject is checked as its topic (`<topic>-value`, `-key`), other
//! subjects on the cluster, lists are filtered, schema ids are readable through a describable
//! subject, and a refusal is 403 with error code 40301.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use skiff_auth::acl::model::CLUSTER_NAME;
use skiff_auth::acl::{
    AclBinding, Authorizer, AuthorizerConfig, Operation, PatternType, Permission, ResourceType,
};
use skiff_auth::{ScramCredential, ScramMechanism, Users};
use skiff_registry::http::{self, AclSource, AuthorizerFuture, Security};
use skiff_registry::Registry;
use skiff_storage_memory::MemoryEngine;
use tower::ServiceExt;

/// A fixed ACL snapshot.
struct Fixed(Arc<Authorizer>);

impl AclSource for Fixed {
    fn authorizer(&self) -> AuthorizerFuture<'_> {
        let authorizer = self.0.clone();
        Box::pin(async move { Ok(authorizer) })
    }
}

fn allow(
    user: &str,
    operation: Operation,
    resource: (ResourceType, &str, PatternType),
) -> AclBinding {
    AclBinding {
        resource_type: resource.0,
        resource_name: resource.1.to_owned(),
        pattern_type: resource.2,
        principal: format!("User:{user}"),
        host: "*".to_owned(),
        operation,
        permission: Permission::Allow,
    }
}

/// alice writes `orders`; bob reads `orders` and describes every `pay*` topic; carol has
/// nothing; ops may alter the cluster's configs; admin is a super user.
async fn app() -> Router {
    let storage = MemoryEngine::storage();
    let users = Users::new(storage.state.clone());
    for name in ["alice", "bob", "carol", "ops", "admin"] {
        // The minimum iterations: each request checks the password.
        let credential = ScramCredential::new(ScramMechanism::Sha256, "pw", 4096);
        users.upsert(name, ScramMechanism::Sha256, credential).await.expect("user");
    }
    let topic = |name| (ResourceType::Topic, name, PatternType::Literal);
    let acls = vec![
        allow("alice", Operation::Write, topic("orders")),
        allow("bob", Operation::Read, topic("orders")),
        allow("bob", Operation::Describe, (ResourceType::Topic, "pay", PatternType::Prefixed)),
        allow(
            "ops",
            Operation::AlterConfigs,
            (ResourceType::Cluster, CLUSTER_NAME, PatternType::Literal),
        ),
        allow("ops", Operation::Alter, (ResourceType::Cluster, CLUSTER_NAME, PatternType::Literal)),
    ];
    let config =
        AuthorizerConfig { super_users: vec!["User:admin".to_owned()], ..Default::default() };
    let security = Security {
        users: Some(users),
        acls: Some(Arc::new(Fixed(Arc::new(Authorizer::new(acls, config))))),
    };
    http::secured_router(Arc::new(Registry::new(storage.state)), security)
}

async fn call(
    app: &Router,
    user: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", http::CONTENT_TYPE)
        .header("authorization", format!("Basic {credentials}"))
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn schema(name: &str) -> Value {
    let text = json!({"type": "record", "name": name, "fields": [{"name": "n", "type": "int"}]});
    json!({ "schema": text.to_string() })
}

fn denied(answer: (u16, Value)) -> bool {
    answer.0 == 403 && answer.1["error_code"] == json!(40301)
}

#[tokio::test]
async fn subjects_follow_their_topics_acls() {
    let app = app().await;
    // Registering needs WRITE on the topic.
    let registered =
        call(&app, "alice", Method::POST, "/subjects/orders-value/versions", Some(schema("O")))
            .await;
    assert_eq!(registered.0, 200, "{registered:?}");
    let id = registered.1["id"].as_i64().expect("id");
    assert!(denied(
        call(&app, "bob", Method::POST, "/subjects/orders-value/versions", Some(schema("O2")))
            .await
    ));
    assert!(denied(
        call(&app, "carol", Method::POST, "/subjects/orders-key/versions", Some(schema("K"))).await
    ));
    // WRITE and READ imply DESCRIBE: both read the subject; carol may not.
    for user in ["alice", "bob"] {
        let (status, versions) =
            call(&app, user, Method::GET, "/subjects/orders-value/versions", None).await;
        assert_eq!((status, versions), (200, json!([1])), "{user}");
    }
    let refused =
        call(&app, "carol", Method::GET, "/subjects/orders-value/versions/latest", None).await;
    assert!(denied(refused.clone()), "{refused:?}");
    assert!(refused.1["message"].as_str().is_some_and(|m| m.contains("User:carol")), "{refused:?}");
    // A schema by id: readable through a subject the principal may describe.
    let by_id = format!("/schemas/ids/{id}");
    assert_eq!(call(&app, "bob", Method::GET, &by_id, None).await.0, 200);
    assert!(denied(call(&app, "carol", Method::GET, &by_id, None).await));
    assert_eq!(call(&app, "carol", Method::GET, "/schemas/ids/999", None).await.0, 404);
    // Deleting needs ALTER on the topic: not given by WRITE.
    assert!(denied(call(&app, "alice", Method::DELETE, "/subjects/orders-value", None).await));
    assert_eq!(
        call(&app, "admin", Method::DELETE, "/subjects/orders-value/versions/1", None).await.0,
        200
    );
}

#[tokio::test]
async fn lists_show_only_describable_subjects() {
    let app = app().await;
    for subject in ["orders-value", "payments-value", "audit-value", "com.example.Record"] {
        let path = format!("/subjects/{subject}/versions");
        let answer = call(&app, "admin", Method::POST, &path, Some(schema("Same"))).await;
        assert_eq!(answer.0, 200, "{subject}: {answer:?}");
    }
    let all = call(&app, "admin", Method::GET, "/subjects", None).await;
    assert_eq!(all.1.as_array().map(Vec::len), Some(4), "{all:?}");
    // bob: orders (READ) and payments (prefixed DESCRIBE on pay*), not audit or the record.
    assert_eq!(
        call(&app, "bob", Method::GET, "/subjects", None).await,
        (200, json!(["orders-value", "payments-value"]))
    );
    assert_eq!(call(&app, "carol", Method::GET, "/subjects", None).await, (200, json!([])));
    // The one schema is used by all four subjects: its lists are filtered the same way.
    let id = call(&app, "admin", Method::GET, "/subjects/orders-value/versions/1", None).await.1
        ["id"]
        .clone();
    let subjects =
        call(&app, "bob", Method::GET, &format!("/schemas/ids/{id}/subjects"), None).await;
    assert_eq!(subjects, (200, json!(["orders-value", "payments-value"])));
    let versions =
        call(&app, "bob", Method::GET, &format!("/schemas/ids/{id}/versions"), None).await;
    assert_eq!(versions.1.as_array().map(Vec::len), Some(2), "{versions:?}");
}

#[tokio::test]
async fn other_subjects_and_global_settings_are_checked_on_the_cluster() {
    let app = app().await;
    let record = "/subjects/com.example.Record/versions";
    assert!(denied(call(&app, "alice", Method::POST, record, Some(schema("R"))).await));
    assert_eq!(call(&app, "ops", Method::POST, record, Some(schema("R"))).await.0, 200);
    let level = json!({"compatibility": "NONE"});
    assert!(denied(call(&app, "alice", Method::PUT, "/config", Some(level.clone())).await));
    assert_eq!(call(&app, "ops", Method::PUT, "/config", Some(level.clone())).await.0, 200);
    // A subject's own level is its topic's config: ops has none on `orders`.
    assert!(denied(call(&app, "ops", Method::PUT, "/config/orders-value", Some(level)).await));
    // Open routes need only a login.
    assert_eq!(call(&app, "carol", Method::GET, "/schemas/types", None).await.0, 200);
}
