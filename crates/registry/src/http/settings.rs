//! `/config`, `/mode` and `/compatibility`.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::{flag, json, new_schema, parse_body, Query, Reply, Shared};
use crate::error::RegistryError;
use crate::registry::VersionSpec;
use crate::settings::{parse_level, parse_mode};

/// `PUT /config` bodies: Confluent's clients send `compatibility`; `compatibilityLevel` too
/// is accepted.
#[derive(Deserialize)]
struct ConfigBody {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

#[derive(Deserialize)]
struct ModeBody {
    mode: Option<String>,
}

fn level_from(
    body: Result<Bytes, BytesRejection>,
) -> Result<crate::format::compatibility::Level, RegistryError> {
    let body: ConfigBody = parse_body(body)?;
    let name = body.compatibility.or(body.compatibility_level).unwrap_or_default();
    parse_level(&name)
}

fn mode_from(body: Result<Bytes, BytesRejection>) -> Result<crate::stored::Mode, RegistryError> {
    let body: ModeBody = parse_body(body)?;
    parse_mode(&body.mode.unwrap_or_default())
}

/// `GET /config`
pub(super) async fn get_global_config(State(registry): State<Shared>) -> Reply {
    let level = registry.global_level().await?;
    Ok(json(&json!({ "compatibilityLevel": level.to_string() })))
}

/// `PUT /config`
pub(super) async fn put_global_config(
    State(registry): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = level_from(body)?;
    registry.set_level(None, level).await?;
    Ok(json(&json!({ "compatibility": level.to_string() })))
}

/// `DELETE /config`: back to the default; answers the level it had.
pub(super) async fn delete_global_config(State(registry): State<Shared>) -> Reply {
    let previous = registry.delete_level(None).await?;
    Ok(json(&json!({ "compatibilityLevel": previous.to_string() })))
}

/// `GET /config/{subject}[?defaultToGlobal=true]`
pub(super) async fn get_config(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
) -> Reply {
    let level = match registry.subject_level(&subject).await? {
        Some(level) => level,
        None if flag(&query, "defaultToGlobal") => registry.global_level().await?,
        None => return Err(RegistryError::SubjectConfigNotFound(subject)),
    };
    Ok(json(&json!({ "compatibilityLevel": level.to_string() })))
}

/// `PUT /config/{subject}`
pub(super) async fn put_config(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let level = level_from(body)?;
    registry.set_level(Some(&subject), level).await?;
    Ok(json(&json!({ "compatibility": level.to_string() })))
}

/// `DELETE /config/{subject}`: answers the level it had.
pub(super) async fn delete_config(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
) -> Reply {
    let previous = registry.delete_level(Some(&subject)).await?;
    Ok(json(&json!({ "compatibilityLevel": previous.to_string() })))
}

/// `GET /mode`
pub(super) async fn get_global_mode(State(registry): State<Shared>) -> Reply {
    Ok(json(&json!({ "mode": registry.global_mode().await?.to_string() })))
}

/// `PUT /mode[?force=..]`
pub(super) async fn put_global_mode(
    State(registry): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let mode = mode_from(body)?;
    registry.set_mode(None, mode).await?;
    Ok(json(&json!({ "mode": mode.to_string() })))
}

/// `GET /mode/{subject}[?defaultToGlobal=true]`
pub(super) async fn get_mode(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
) -> Reply {
    let mode = match registry.subject_mode(&subject).await? {
        Some(mode) => mode,
        None if flag(&query, "defaultToGlobal") => registry.global_mode().await?,
        None => return Err(RegistryError::SubjectModeNotFound(subject)),
    };
    Ok(json(&json!({ "mode": mode.to_string() })))
}

/// `PUT /mode/{subject}`
pub(super) async fn put_mode(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let mode = mode_from(body)?;
    registry.set_mode(Some(&subject), mode).await?;
    Ok(json(&json!({ "mode": mode.to_string() })))
}

/// `DELETE /mode/{subject}`: answers the mode it had.
pub(super) async fn delete_mode(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
) -> Reply {
    let previous = registry.delete_mode(Some(&subject)).await?;
    Ok(json(&json!({ "mode": previous.to_string() })))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}[?verbose=true]`
pub(super) async fn compatibility(
    State(registry): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    query: Query,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let spec = VersionSpec::parse(&version)?;
    check(&registry, &subject, Some(spec), &query, body).await
}

/// `POST /compatibility/subjects/{subject}/versions[?verbose=true]`: against every version
/// the subject's level looks at.
pub(super) async fn compatibility_all(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    check(&registry, &subject, None, &query, body).await
}

async fn check(
    registry: &Shared,
    subject: &str,
    against: Option<VersionSpec>,
    query: &Query,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let new = new_schema(body)?;
    let messages = registry.check_compatibility(subject, against, &new).await?;
    let mut answer = json!({ "is_compatible": messages.is_empty() });
    if flag(query, "verbose") {
        answer["messages"] = json!(messages);
    }
    Ok(json(&answer))
}
