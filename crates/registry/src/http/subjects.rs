//! `/subjects/...`: register, look up, list, read and delete versions.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde_json::json;

use super::{flag, json, new_schema, raw, schema_fields, schema_text, Query, Reply, Shared};
use crate::registry::{SubjectVersion, VersionSpec};

/// `GET /subjects[?deleted=true][&subjectPrefix=..]`
pub(super) async fn list(State(registry): State<Shared>, query: Query) -> Reply {
    let prefix = query.get("subjectPrefix").map_or("", String::as_str);
    Ok(json(&registry.subjects(flag(&query, "deleted"), prefix).await?))
}

/// `GET /subjects/{subject}/versions[?deleted=true]`
pub(super) async fn versions(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
) -> Reply {
    Ok(json(&registry.versions(&subject, flag(&query, "deleted")).await?))
}

/// `POST /subjects/{subject}/versions`: `{"id": n}`.
pub(super) async fn register(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let new = new_schema(body)?;
    let registered = registry.register(&subject, new).await?;
    Ok(json(&json!({ "id": registered.id })))
}

/// `POST /subjects/{subject}[?deleted=true]`: the version holding this schema.
pub(super) async fn lookup(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let new = new_schema(body)?;
    let found = registry.lookup(&subject, &new, flag(&query, "deleted")).await?;
    Ok(json(&version_json(&found, &query)))
}

/// `GET /subjects/{subject}/versions/{version}[?deleted=true][&format=serialized]`
pub(super) async fn version(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    query: Query,
) -> Reply {
    Ok(json(&version_json(&named_version(&registry, &subject, &version, &query).await?, &query)))
}

/// `GET /subjects/{subject}/versions/{version}/schema[?format=serialized]`: the text alone.
pub(super) async fn version_text(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    query: Query,
) -> Reply {
    Ok(raw(&schema_text(
        &named_version(&registry, &subject, &version, &query).await?.schema,
        &query,
    )))
}

/// The version a path names (`?deleted=true` finds soft-deleted ones).
async fn named_version(
    registry: &Shared,
    subject: &str,
    version: &str,
    query: &Query,
) -> Result<SubjectVersion, crate::RegistryError> {
    let spec = VersionSpec::parse(version)?;
    registry.version(subject, spec, flag(query, "deleted")).await
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`: ids of schemas referencing it.
pub(super) async fn referenced_by(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    let found = registry.version(&subject, spec, true).await?;
    Ok(json(&registry.referenced_by(&subject, found.version).await?))
}

/// `DELETE /subjects/{subject}[?permanent=true]`: the versions deleted.
pub(super) async fn delete(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
) -> Reply {
    Ok(json(&registry.delete_subject(&subject, flag(&query, "permanent")).await?))
}

/// `DELETE /subjects/{subject}/versions/{version}[?permanent=true]`: the version deleted.
pub(super) async fn delete_version(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    query: Query,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    Ok(json(&registry.delete_version(&subject, spec, flag(&query, "permanent")).await?))
}

fn version_json(found: &SubjectVersion, query: &Query) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    object.insert("subject".to_owned(), found.subject.clone().into());
    object.insert("version".to_owned(), found.version.into());
    object.insert("id".to_owned(), found.id.into());
    schema_fields(&mut object, &found.schema, query);
    serde_json::Value::Object(object)
}
