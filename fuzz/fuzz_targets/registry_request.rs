//! Schema Registry requests as its HTTP API receives them: the first byte picks a route that
//! takes a JSON body (register, look up, check compatibility, set a compatibility level or a
//! mode), the rest is the body. The subject already holds an Avro schema, so registration and
//! compatibility checks compare against it. Every answer must be an HTTP response (an error code
//! for bad bodies), never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request};
use libfuzzer_sys::fuzz_target;
use skiff_registry::http::{router, CONTENT_TYPE};
use skiff_registry::Registry;
use tower::ServiceExt;

const ROUTES: [(&str, &str); 8] = [
    ("POST", "/subjects/orders-value/versions"),
    ("POST", "/subjects/orders-value"),
    ("POST", "/compatibility/subjects/orders-value/versions/latest"),
    ("POST", "/compatibility/subjects/orders-value/versions"),
    ("PUT", "/config"),
    ("PUT", "/config/orders-value"),
    ("PUT", "/mode"),
    ("PUT", "/mode/orders-value"),
];

const REGISTERED: &str = r#"{"schema": "{\"type\": \"record\", \"name\": \"Order\", \"fields\": [{\"name\": \"id\", \"type\": \"long\"}, {\"name\": \"note\", \"type\": [\"null\", \"string\"], \"default\": null}]}"}"#;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    })
}

fn request(method: &str, path: &str, body: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(Body::from(body))
        .expect("a request of fixed parts")
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else { return };
    let (method, path) = ROUTES[usize::from(route) % ROUTES.len()];
    runtime().block_on(async {
        let storage = skiff_storage_memory::MemoryEngine::storage();
        let app = router(Arc::new(Registry::new(storage.state)));
        let seeded = app.clone().oneshot(request("POST", ROUTES[0].1, REGISTERED.into())).await;
        assert!(
            seeded.is_ok_and(|answer| answer.status().is_success()),
            "the seed schema registers"
        );
        let _ = app.oneshot(request(method, path, body.to_vec())).await;
    });
});
