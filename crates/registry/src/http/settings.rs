//! `/config`, `/mode` (one generic set of handlers: see [`Setting`]) and `/compatibility`.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{flag, json, new_schema, parse_body, Query, Reply, Shared};
use crate::registry::VersionSpec;
use crate::settings::Setting;

/// A `PUT` body: `{"compatibility": ..}` or `{"mode": ..}`; the answer's field name (e.g.
/// `compatibilityLevel`) is accepted too.
fn value_from<S: Setting>(body: Result<Bytes, BytesRejection>) -> Result<S, crate::RegistryError> {
    let body: Map<String, Value> = parse_body(body)?;
    let name = body.get(S::FIELD).or_else(|| body.get(S::ANSWER_FIELD)).and_then(Value::as_str);
    S::parse(name.unwrap_or_default())
}

fn answer<S: Setting>(field: &str, value: S) -> Reply {
    Ok(json(&json!({ field: value.to_string() })))
}

/// `GET /config`, `GET /mode`
pub(super) async fn get_global<S: Setting>(State(registry): State<Shared>) -> Reply {
    answer(S::ANSWER_FIELD, registry.global::<S>().await?)
}

/// `PUT /config`, `PUT /mode[?force=..]`
pub(super) async fn put_global<S: Setting>(
    State(registry): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let value = value_from::<S>(body)?;
    registry.set(None, value).await?;
    answer(S::FIELD, value)
}

/// `DELETE /config`: back to the default; answers the value it had.
pub(super) async fn delete_global<S: Setting>(State(registry): State<Shared>) -> Reply {
    answer(S::ANSWER_FIELD, registry.unset::<S>(None).await?)
}

/// `GET /config/{subject}`, `GET /mode/{subject}` (`?defaultToGlobal=true`)
pub(super) async fn get_subject<S: Setting>(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    query: Query,
) -> Reply {
    let value = match registry.setting::<S>(Some(&subject)).await? {
        Some(value) => value,
        None if flag(&query, "defaultToGlobal") => registry.global::<S>().await?,
        None => return Err(S::not_configured(&subject)),
    };
    answer(S::ANSWER_FIELD, value)
}

/// `PUT /config/{subject}`, `PUT /mode/{subject}`
pub(super) async fn put_subject<S: Setting>(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let value = value_from::<S>(body)?;
    registry.set(Some(&subject), value).await?;
    answer(S::FIELD, value)
}

/// `DELETE /config/{subject}`, `DELETE /mode/{subject}`: answers the value it had.
pub(super) async fn delete_subject<S: Setting>(
    State(registry): State<Shared>,
    Path(subject): Path<String>,
) -> Reply {
    answer(S::ANSWER_FIELD, registry.unset::<S>(Some(&subject)).await?)
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
