//! The REST API, shaped as Confluent's Schema Registry answers its clients: JSON bodies in
//! `application/vnd.schemaregistry.v1+json`, errors as `{"error_code": .., "message": ..}`.

mod acl;
mod auth;
mod schemas;
mod settings;
mod subjects;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::error::RegistryError;
use crate::format::compatibility::Level;
use crate::format::{Reference, SchemaType};
use crate::register::NewSchema;
use crate::registry::Registry;
use crate::stored::Mode;

/// Largest request body accepted; larger ones are refused with HTTP 413 before being read.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The content type of every response.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = Arc<Registry>;
type Reply = Result<Response, RegistryError>;

/// Every route of the API over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(|| async { json(&serde_json::json!({})) }))
        .route("/subjects", get(subjects::list))
        .route("/subjects/{subject}", post(subjects::lookup).delete(subjects::delete))
        .route("/subjects/{subject}/versions", get(subjects::versions).post(subjects::register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version).delete(subjects::delete_version),
        )
        .route("/subjects/{subject}/versions/{version}/schema", get(subjects::version_text))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(subjects::referenced_by))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::text_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_of))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_of))
        .route(
            "/config",
            get(settings::get_global::<Level>)
                .put(settings::put_global::<Level>)
                .delete(settings::delete_global::<Level>),
        )
        .route(
            "/config/{subject}",
            get(settings::get_subject::<Level>)
                .put(settings::put_subject::<Level>)
                .delete(settings::delete_subject::<Level>),
        )
        .route("/mode", get(settings::get_global::<Mode>).put(settings::put_global::<Mode>))
        .route(
            "/mode/{subject}",
            get(settings::get_subject::<Mode>)
                .put(settings::put_subject::<Mode>)
                .delete(settings::delete_subject::<Mode>),
        )
        .route("/compatibility/subjects/{subject}/versions", post(settings::compatibility_all))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(settings::compatibility),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(registry)
}

pub use acl::{AclSource, AuthorizerFuture};

/// Who may use the API: with `users`, every request must carry HTTP basic credentials of one
/// of them (`--schema-registry-basic-auth`); with `acls`, the cluster's ACLs decide what each
/// principal may do with which subjects (`--authorizer acl`; see `acl.rs` for the rules).
#[derive(Clone, Default)]
pub struct Security {
    pub users: Option<skiff_auth::Users>,
    pub acls: Option<Arc<dyn AclSource>>,
}

/// [`router`] behind the authentication and authorization `security` asks for.
pub fn secured_router(registry: Arc<Registry>, security: Security) -> Router {
    let mut router = router(registry.clone());
    if let Some(acls) = security.acls {
        let guard = Arc::new(acl::Guard { acls, registry });
        // A route layer: it sees which route matched (the ACL rules are per route).
        router = router.route_layer(axum::middleware::from_fn_with_state(guard, acl::authorize));
    }
    if let Some(users) = security.users {
        router = router.layer(axum::middleware::from_fn_with_state(users, auth::require_user));
    }
    router
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    registry: Arc<Registry>,
    listener: TcpListener,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        let (basic_auth, acls) = (security.users.is_some(), security.acls.is_some());
        tracing::info!(%address, basic_auth, acls, "schema registry listening");
    }
    // The peer's address is the host ACLs name.
    let service = secured_router(registry, security)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self, "schema registry request failed");
        }
        error(status, self.code(), &self.to_string())
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = serde_json::json!({ "error_code": code, "message": message });
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

/// A 200 answer with `value` as its JSON body.
fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(failure) => error(StatusCode::INTERNAL_SERVER_ERROR, 50001, &failure.to_string()),
    }
}

/// A 200 answer with a schema's text as its body, as the `/schema` routes give it.
fn raw(text: &str) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text.to_owned()).into_response()
}

/// The request's query parameters.
type Query = axum::extract::Query<HashMap<String, String>>;

/// A boolean query flag: `true` in any case (Python clients send `True`).
fn flag(query: &Query, name: &str) -> bool {
    query.get(name).is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// The body, or 413 over [`MAX_BODY_BYTES`], or 422 if it could not be read.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RegistryError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RegistryError::TooLarge(MAX_BODY_BYTES)
        } else {
            RegistryError::BadRequest(rejection.body_text())
        }
    })
}

/// Parses a JSON body; anything that does not fit is 422.
fn parse_body<T: for<'de> Deserialize<'de>>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, RegistryError> {
    let bytes = body_bytes(body)?;
    serde_json::from_slice(&bytes)
        .map_err(|failure| RegistryError::BadRequest(format!("Unprocessable entity: {failure}")))
}

/// The body of registration, look-up and compatibility requests. Other fields Confluent's
/// clients send (`metadata`, `ruleSet`) are accepted and ignored.
#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<Reference>>,
    #[serde(default)]
    id: Option<i32>,
    #[serde(default)]
    version: Option<i32>,
}

fn new_schema(body: Result<Bytes, BytesRejection>) -> Result<NewSchema, RegistryError> {
    let body: SchemaBody = parse_body(body)?;
    let schema_type = match body.schema_type.as_deref() {
        None | Some("") => SchemaType::default(),
        Some(name) => name
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| RegistryError::InvalidSchema(format!("unknown schema type {name}")))?,
    };
    if body.schema.trim().is_empty() {
        return Err(RegistryError::InvalidSchema("empty schema".to_owned()));
    }
    Ok(NewSchema {
        schema_type,
        text: body.schema,
        references: body.references.unwrap_or_default(),
        id: body.id.filter(|id| *id > 0),
        version: body.version.filter(|version| *version > 0),
    })
}

/// A schema's text in the form the request asks for: `?format=serialized` gives a Protobuf
/// schema as a base64 `FileDescriptorProto` (what confluent-kafka's Protobuf deserializer
/// reads); otherwise, and for the other formats, the text as registered.
fn schema_text(schema: &crate::registry::RegisteredSchema, query: &Query) -> String {
    let serialized = query.get("format").is_some_and(|format| format == "serialized");
    match schema.schema.serialized() {
        Some(text) if serialized => text,
        _ => schema.text.clone(),
    }
}

/// The JSON Confluent gives for a schema: `schemaType` left out for Avro, `references` when
/// empty; the text as [`schema_text`] picks it.
fn schema_fields(
    object: &mut serde_json::Map<String, serde_json::Value>,
    schema: &crate::registry::RegisteredSchema,
    query: &Query,
) {
    if schema.schema_type != SchemaType::Avro {
        object.insert("schemaType".to_owned(), schema.schema_type.to_string().into());
    }
    if !schema.references.is_empty() {
        let references = serde_json::to_value(&schema.references).unwrap_or_default();
        object.insert("references".to_owned(), references);
    }
    object.insert("schema".to_owned(), schema_text(schema, query).into());
}
