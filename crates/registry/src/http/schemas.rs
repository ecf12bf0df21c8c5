//! `/schemas/...`: schemas by id, and the types served.

use axum::extract::{Path, State};
use serde_json::json;

use super::{flag, json, raw, schema_fields, schema_text, Query, Reply, Shared};
use crate::error::RegistryError;
use crate::registry::RegisteredSchema;
use std::sync::Arc;

/// `GET /schemas/types`
pub(super) async fn types() -> Reply {
    Ok(json(&["JSON", "PROTOBUF", "AVRO"]))
}

async fn find(registry: &Shared, id: &str) -> Result<Arc<RegisteredSchema>, RegistryError> {
    let not_found = || RegistryError::SchemaNotFound(id.to_owned());
    let id: i32 = id.parse().map_err(|_| not_found())?;
    registry.schema_by_id(id).await?.ok_or_else(not_found)
}

/// `GET /schemas/ids/{id}[?format=serialized]`; the `subject` parameter is accepted and
/// ignored (ids are unique across subjects).
pub(super) async fn by_id(
    State(registry): State<Shared>,
    Path(id): Path<String>,
    query: Query,
) -> Reply {
    let schema = find(&registry, &id).await?;
    let mut object = serde_json::Map::new();
    schema_fields(&mut object, &schema, &query);
    Ok(json(&object))
}

/// `GET /schemas/ids/{id}/schema[?format=serialized]`: the text alone.
pub(super) async fn text_by_id(
    State(registry): State<Shared>,
    Path(id): Path<String>,
    query: Query,
) -> Reply {
    let schema = find(&registry, &id).await?;
    Ok(raw(&schema_text(&schema, &query)))
}

/// The (subject, version) pairs using the schema `id`; 40403 if there is no such schema.
async fn usages(
    registry: &Shared,
    id: &str,
    query: &Query,
) -> Result<Vec<(String, i32)>, RegistryError> {
    let schema = find(registry, id).await?;
    registry.subject_versions_of(schema.id, flag(query, "deleted")).await
}

/// `GET /schemas/ids/{id}/versions[?deleted=true]`: `[{"subject": .., "version": ..}]`.
pub(super) async fn versions_of(
    State(registry): State<Shared>,
    Path(id): Path<String>,
    query: Query,
) -> Reply {
    let listed: Vec<_> = usages(&registry, &id, &query)
        .await?
        .into_iter()
        .map(|(subject, version)| json!({ "subject": subject, "version": version }))
        .collect();
    Ok(json(&listed))
}

/// `GET /schemas/ids/{id}/subjects[?deleted=true]`
pub(super) async fn subjects_of(
    State(registry): State<Shared>,
    Path(id): Path<String>,
    query: Query,
) -> Reply {
    let mut subjects: Vec<String> =
        usages(&registry, &id, &query).await?.into_iter().map(|(subject, _)| subject).collect();
    subjects.dedup();
    Ok(json(&subjects))
}
