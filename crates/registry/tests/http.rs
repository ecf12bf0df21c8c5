//! The REST API through the real router (tower `oneshot`): every route, and every error code
//! with its HTTP status, in Confluent's JSON shape.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use skiff_registry::{http, Registry};
use skiff_storage::{StateStore, StorageError, Versioned};
use skiff_storage_memory::MemoryEngine;
use tower::ServiceExt;

fn app() -> Router {
    http::router(Arc::new(Registry::new(MemoryEngine::storage().state)))
}

/// Sends one request; returns the status and the body (JSON if it parses, else a string).
async fn call(app: &Router, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    send(app, method, path, body).await
}

async fn send(app: &Router, method: Method, path: &str, body: Body) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body)
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    if status != 404 || response.headers().get("content-type").is_some() {
        let content_type = response.headers().get("content-type").expect("content type");
        assert_eq!(content_type, http::CONTENT_TYPE);
    }
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(app: &Router, path: &str) -> (u16, Value) {
    call(app, Method::GET, path, None).await
}

async fn post(app: &Router, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::POST, path, Some(body)).await
}

async fn delete(app: &Router, path: &str) -> (u16, Value) {
    call(app, Method::DELETE, path, None).await
}

async fn put(app: &Router, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::PUT, path, Some(body)).await
}

/// Asserts an error answer: HTTP status and Confluent error code.
fn assert_error(answer: (u16, Value), status: u16, code: u64) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1["error_code"], json!(code), "{answer:?}");
    assert!(answer.1["message"].is_string(), "{answer:?}");
}

fn record(name: &str, fields: &[&str]) -> String {
    let fields: Vec<Value> =
        fields.iter().map(|field| json!({"name": field, "type": "string"})).collect();
    json!({"type": "record", "name": name, "fields": fields}).to_string()
}

#[tokio::test]
async fn root_types_and_unknown_routes() {
    let app = app();
    assert_eq!(get(&app, "/").await, (200, json!({})));
    assert_eq!(get(&app, "/schemas/types").await, (200, json!(["JSON", "PROTOBUF", "AVRO"])));
    assert_error(get(&app, "/no/such/route").await, 404, 404);
}

#[tokio::test]
async fn register_then_read_every_way() {
    let app = app();
    let avro = record("User", &["name"]);
    assert_eq!(
        post(&app, "/subjects/u-value/versions", json!({"schema": avro})).await,
        (200, json!({"id": 1}))
    );
    assert_eq!(
        post(&app, "/subjects/u-value/versions?normalize=True", json!({"schema": avro})).await,
        (200, json!({"id": 1}))
    );
    let json_schema = json!({"type": "object"}).to_string();
    let answer = post(
        &app,
        "/subjects/j-value/versions",
        json!({"schema": json_schema, "schemaType": "JSON"}),
    )
    .await;
    assert_eq!(answer, (200, json!({"id": 2})));

    assert_eq!(get(&app, "/subjects").await, (200, json!(["j-value", "u-value"])));
    assert_eq!(get(&app, "/subjects?subjectPrefix=u").await, (200, json!(["u-value"])));
    assert_eq!(get(&app, "/subjects/u-value/versions").await, (200, json!([1])));
    let expected = json!({"subject": "u-value", "version": 1, "id": 1, "schema": avro});
    assert_eq!(get(&app, "/subjects/u-value/versions/1").await, (200, expected.clone()));
    assert_eq!(get(&app, "/subjects/u-value/versions/latest").await, (200, expected.clone()));
    assert_eq!(get(&app, "/subjects/u-value/versions/-1").await, (200, expected));
    let (status, text) = get(&app, "/subjects/u-value/versions/1/schema").await;
    assert_eq!((status, text.to_string()), (200, avro.clone()));
    let typed = get(&app, "/subjects/j-value/versions/latest").await.1;
    assert_eq!(typed["schemaType"], "JSON", "non-Avro types are named");

    assert_eq!(get(&app, "/schemas/ids/1").await, (200, json!({"schema": avro})));
    let (status, text) = get(&app, "/schemas/ids/1/schema").await;
    assert_eq!((status, text.to_string()), (200, avro.clone()));
    assert_eq!(get(&app, "/schemas/ids/2?subject=j-value&format=x").await.1["schemaType"], "JSON");
    post(&app, "/subjects/copy/versions", json!({"schema": avro})).await;
    assert_eq!(get(&app, "/schemas/ids/1/subjects").await, (200, json!(["copy", "u-value"])));
    assert_eq!(
        get(&app, "/schemas/ids/1/versions").await,
        (200, json!([{"subject": "copy", "version": 1}, {"subject": "u-value", "version": 1}]))
    );

    let found = post(&app, "/subjects/u-value", json!({"schema": avro})).await;
    assert_eq!(found.1["version"], 1);
    assert_eq!(found.1["id"], 1);
    assert_error(
        post(&app, "/subjects/u-value", json!({"schema": record("Other", &["x"])})).await,
        404,
        40403,
    );
    assert_error(post(&app, "/subjects/nobody", json!({"schema": avro})).await, 404, 40401);
}

#[tokio::test]
async fn not_found_and_invalid_requests() {
    let app = app();
    assert_error(get(&app, "/subjects/none/versions").await, 404, 40401);
    assert_error(get(&app, "/subjects/none/versions/1").await, 404, 40401);
    post(&app, "/subjects/s/versions", json!({"schema": record("R", &["a"])})).await;
    assert_error(get(&app, "/subjects/s/versions/9").await, 404, 40402);
    assert_error(get(&app, "/subjects/s/versions/zero").await, 422, 42202);
    assert_error(get(&app, "/subjects/s/versions/0").await, 422, 42202);
    assert_error(get(&app, "/schemas/ids/77").await, 404, 40403);
    assert_error(get(&app, "/schemas/ids/abc").await, 404, 40403);
    assert_error(get(&app, "/schemas/ids/77/versions").await, 404, 40403);
    assert_error(
        post(&app, "/subjects/s/versions", json!({"schema": "{not json"})).await,
        422,
        42201,
    );
    assert_error(post(&app, "/subjects/s/versions", json!({"schema": ""})).await, 422, 42201);
    let unknown_type = json!({"schema": "{}", "schemaType": "XML"});
    assert_error(post(&app, "/subjects/s/versions", unknown_type).await, 422, 42201);
    assert_error(post(&app, "/subjects/s/versions", json!({"no": "schema"})).await, 422, 422);
    assert_error(
        send(&app, Method::POST, "/subjects/s/versions", Body::from("garbage")).await,
        422,
        422,
    );
    let huge = vec![b' '; http::MAX_BODY_BYTES + 1];
    assert_error(
        send(&app, Method::POST, "/subjects/s/versions", Body::from(huge)).await,
        413,
        413,
    );
}

#[tokio::test]
async fn soft_then_permanent_deletes() {
    let app = app();
    put(&app, "/config/s", json!({"compatibility": "NONE"})).await;
    for fields in [&["a"][..], &["b"], &["c"]] {
        post(&app, "/subjects/s/versions", json!({"schema": record("R", fields)})).await;
    }
    assert_error(delete(&app, "/subjects/s/versions/1?permanent=true").await, 404, 40407);
    assert_eq!(delete(&app, "/subjects/s/versions/1").await, (200, json!(1)));
    assert_error(delete(&app, "/subjects/s/versions/1").await, 404, 40406);
    assert_eq!(get(&app, "/subjects/s/versions").await, (200, json!([2, 3])));
    assert_eq!(get(&app, "/subjects/s/versions?deleted=true").await, (200, json!([1, 2, 3])));
    assert_eq!(get(&app, "/subjects/s/versions/1?deleted=true").await.0, 200);
    assert_eq!(delete(&app, "/subjects/s/versions/1?permanent=true").await, (200, json!(1)));
    assert_eq!(delete(&app, "/subjects/s/versions/latest").await, (200, json!(3)));
    assert_error(delete(&app, "/subjects/s?permanent=true").await, 404, 40405);
    assert_eq!(delete(&app, "/subjects/s").await, (200, json!([2])));
    assert_error(delete(&app, "/subjects/s").await, 404, 40404);
    assert_eq!(get(&app, "/subjects").await, (200, json!([])));
    assert_eq!(get(&app, "/subjects?deleted=true").await, (200, json!(["s"])));
    assert_eq!(delete(&app, "/subjects/s?permanent=true").await, (200, json!([2, 3])));
    assert_eq!(get(&app, "/subjects?deleted=true").await, (200, json!([])));
    assert_error(delete(&app, "/subjects/s").await, 404, 40401);
    assert_error(get(&app, "/config/s").await, 404, 40408);
}

#[tokio::test]
async fn references_are_checked_and_protect_what_they_name() {
    let app = app();
    let address = record("Address", &["street"]);
    post(&app, "/subjects/address/versions", json!({"schema": address})).await;
    let user =
        json!({"type": "record", "name": "User", "fields": [{"name": "home", "type": "Address"}]});
    let body = json!({
        "schema": user.to_string(),
        "references": [{"name": "Address", "subject": "address", "version": 1}],
    });
    let (status, registered) = post(&app, "/subjects/user/versions", body.clone()).await;
    assert_eq!(status, 200);
    let got = get(&app, "/subjects/user/versions/1").await.1;
    assert_eq!(got["references"], json!([{"name": "Address", "subject": "address", "version": 1}]));
    assert_eq!(
        get(&app, "/subjects/address/versions/1/referencedby").await,
        (200, json!([registered["id"]]))
    );
    assert_error(delete(&app, "/subjects/address/versions/1").await, 422, 42206);
    assert_error(delete(&app, "/subjects/address").await, 422, 42206);
    let mut missing = body;
    missing["references"][0]["version"] = json!(5);
    assert_error(post(&app, "/subjects/user2/versions", missing).await, 422, 42201);
}

#[tokio::test]
async fn config_levels() {
    let app = app();
    assert_eq!(get(&app, "/config").await, (200, json!({"compatibilityLevel": "BACKWARD"})));
    assert_eq!(
        put(&app, "/config", json!({"compatibility": "full"})).await,
        (200, json!({"compatibility": "FULL"}))
    );
    assert_eq!(get(&app, "/config").await, (200, json!({"compatibilityLevel": "FULL"})));
    assert_error(put(&app, "/config", json!({"compatibility": "SIDEWAYS"})).await, 422, 42203);
    assert_error(put(&app, "/config", json!({})).await, 422, 42203);
    assert_error(get(&app, "/config/s").await, 404, 40408);
    assert_eq!(
        get(&app, "/config/s?defaultToGlobal=true").await,
        (200, json!({"compatibilityLevel": "FULL"}))
    );
    let set = put(&app, "/config/s", json!({"compatibilityLevel": "NONE"})).await;
    assert_eq!(set, (200, json!({"compatibility": "NONE"})));
    assert_eq!(get(&app, "/config/s").await, (200, json!({"compatibilityLevel": "NONE"})));
    assert_eq!(delete(&app, "/config/s").await, (200, json!({"compatibilityLevel": "NONE"})));
    assert_error(delete(&app, "/config/s").await, 404, 40408);
    assert_eq!(delete(&app, "/config").await, (200, json!({"compatibilityLevel": "FULL"})));
    assert_eq!(get(&app, "/config").await, (200, json!({"compatibilityLevel": "BACKWARD"})));
}

#[tokio::test]
async fn modes_refuse_writes() {
    let app = app();
    assert_eq!(get(&app, "/mode").await, (200, json!({"mode": "READWRITE"})));
    assert_error(put(&app, "/mode", json!({"mode": "SOMETIMES"})).await, 422, 42204);
    assert_eq!(
        put(&app, "/mode?force=False", json!({"mode": "READONLY"})).await,
        (200, json!({"mode": "READONLY"}))
    );
    let schema = json!({"schema": record("R", &["a"])});
    assert_error(post(&app, "/subjects/s/versions", schema.clone()).await, 422, 42205);
    assert_error(delete(&app, "/subjects/s").await, 422, 42205);
    assert_error(get(&app, "/mode/s").await, 404, 40409);
    assert_eq!(get(&app, "/mode/s?defaultToGlobal=true").await, (200, json!({"mode": "READONLY"})));
    assert_eq!(
        put(&app, "/mode/s", json!({"mode": "READWRITE"})).await,
        (200, json!({"mode": "READWRITE"}))
    );
    assert_eq!(post(&app, "/subjects/s/versions", schema.clone()).await.0, 200);
    assert_eq!(delete(&app, "/mode/s").await, (200, json!({"mode": "READWRITE"})));
    assert_error(post(&app, "/subjects/s/versions", schema).await, 422, 42205);
    let with_id = json!({"schema": record("R", &["b"]), "id": 100});
    put(&app, "/mode", json!({"mode": "READWRITE"})).await;
    assert_error(post(&app, "/subjects/t/versions", with_id.clone()).await, 422, 42205);
    put(&app, "/mode", json!({"mode": "IMPORT"})).await;
    assert_eq!(post(&app, "/subjects/t/versions", with_id).await, (200, json!({"id": 100})));
}

#[tokio::test]
async fn compatibility_route() {
    let app = app();
    let schema = json!({"schema": record("R", &["a"])});
    assert_error(
        post(&app, "/compatibility/subjects/s/versions/latest", schema.clone()).await,
        404,
        40401,
    );
    assert_eq!(
        post(&app, "/compatibility/subjects/s/versions", schema.clone()).await,
        (200, json!({"is_compatible": true}))
    );
    post(&app, "/subjects/s/versions", schema.clone()).await;
    assert_eq!(
        post(&app, "/compatibility/subjects/s/versions/latest", schema.clone()).await,
        (200, json!({"is_compatible": true}))
    );
    let verbose =
        post(&app, "/compatibility/subjects/s/versions/1?verbose=True", schema.clone()).await;
    assert_eq!(verbose, (200, json!({"is_compatible": true, "messages": []})));
    assert_error(
        post(&app, "/compatibility/subjects/s/versions/2", schema.clone()).await,
        404,
        40402,
    );
    assert_error(post(&app, "/compatibility/subjects/s/versions/x", schema).await, 422, 42202);

    let added = json!({"schema": record("R", &["a", "b"])});
    let answer =
        post(&app, "/compatibility/subjects/s/versions/latest?verbose=true", added.clone()).await;
    assert_eq!(answer.0, 200);
    assert_eq!(answer.1["is_compatible"], false);
    assert!(!answer.1["messages"].as_array().expect("messages").is_empty(), "{answer:?}");
    assert_eq!(
        post(&app, "/compatibility/subjects/s/versions", added.clone()).await.1,
        json!({"is_compatible": false})
    );
    assert_error(post(&app, "/subjects/s/versions", added.clone()).await, 409, 409);
    put(&app, "/config/s", json!({"compatibility": "NONE"})).await;
    assert_eq!(
        post(&app, "/compatibility/subjects/s/versions/1", added.clone()).await.1,
        json!({"is_compatible": true})
    );
    assert_eq!(post(&app, "/subjects/s/versions", added).await.0, 200);
}

/// A state store whose backend is down.
struct Unavailable;

#[async_trait]
impl StateStore for Unavailable {
    async fn get(&self, _: &str) -> skiff_storage::Result<Option<Versioned>> {
        Err(StorageError::Unavailable("connection refused".to_owned()))
    }
    async fn put(&self, _: &str, _: Bytes, _: Option<u64>) -> skiff_storage::Result<u64> {
        Err(StorageError::Unavailable("connection refused".to_owned()))
    }
    async fn delete(&self, _: &str, _: u64) -> skiff_storage::Result<()> {
        Err(StorageError::Unavailable("connection refused".to_owned()))
    }
    async fn list(&self, _: &str) -> skiff_storage::Result<Vec<(String, Versioned)>> {
        Err(StorageError::Unavailable("connection refused".to_owned()))
    }
}

#[tokio::test]
async fn storage_failures_are_50001() {
    let app = http::router(Arc::new(Registry::new(Arc::new(Unavailable))));
    assert_error(get(&app, "/subjects").await, 500, 50001);
    assert_error(
        post(&app, "/subjects/s/versions", json!({"schema": record("R", &["a"])})).await,
        500,
        50001,
    );
    assert_error(get(&app, "/config").await, 500, 50001);
}

#[tokio::test]
async fn arbitrary_bodies_never_break_the_server() {
    let app = app();
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff, 0xfe, 0x00],
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"schema\": 5}".to_vec(),
        b"{\"schema\": \"{}\", \"references\": [{\"name\": 1}]}".to_vec(),
        b"{\"schema\": \"{}\", \"references\": [{\"name\": \"a\", \"subject\": \"\", \"version\": 1}]}".to_vec(),
        b"{\"schema\": \"syntax = \\\"proto3\\\"; message M {\", \"schemaType\": \"PROTOBUF\"}".to_vec(),
        b"{\"schema\": \"{\\\"type\\\": \\\"record\\\"}\"}".to_vec(),
        b"{\"compatibility\": null, \"mode\": [1]}".to_vec(),
        "{\"schema\": \"\u{0}\u{7f}ü\"}".as_bytes().to_vec(),
    ];
    let paths = [
        (Method::POST, "/subjects/s/versions"),
        (Method::POST, "/subjects/s"),
        (Method::POST, "/compatibility/subjects/s/versions/latest"),
        (Method::PUT, "/config"),
        (Method::PUT, "/config/s"),
        (Method::PUT, "/mode"),
        (Method::PUT, "/mode/s"),
    ];
    for body in bodies {
        for (method, path) in &paths {
            let (status, answer) = send(&app, method.clone(), path, Body::from(body.clone())).await;
            assert!(
                (400..500).contains(&status) || status == 200,
                "{method} {path} {body:?}: {status} {answer}"
            );
        }
    }
}
