//! A small client of the Schema Registry REST API (Skiff's, or Confluent's: the same routes) for
//! `skiff schema` and the JSON formats of `skiff produce` and `skiff consume`.
//!
//! Errors in Confluent's shape are shown as `error 40401: Subject 'x' not found.`; an
//! unreachable registry says where it looked and how to point elsewhere.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use skiff_schema::{Reference, ResolvedReference, Schema, SchemaType};
use url::Url;

/// Where the tools look for a registry unless told otherwise: a broker started with
/// `--schema-registry-listen 0.0.0.0:8081`.
pub(crate) const DEFAULT_REGISTRY: &str = "http://localhost:8081";

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Upper bound on one request's round trip, so a wedged registry cannot hang a script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The most schemas a reference closure may hold (the registry's own limit).
const MAX_REFERENCE_CLOSURE: usize = 1000;

/// Confluent's error code for a subject that does not exist.
pub(crate) const SUBJECT_NOT_FOUND: i64 = 40401;
/// Soft-deleting what is soft-deleted already: a subject, a version.
const SUBJECT_SOFT_DELETED: i64 = 40404;
const VERSION_SOFT_DELETED: i64 = 40406;

/// An error answer of the registry, in Confluent's shape.
#[derive(Debug, thiserror::Error)]
#[error("error {code}: {message}")]
pub(crate) struct RegistryError {
    pub(crate) code: i64,
    message: String,
}

/// One version of a subject, as `GET /subjects/{subject}/versions/{version}` answers it.
#[derive(Debug, Deserialize)]
pub(crate) struct SubjectVersion {
    pub(crate) subject: String,
    pub(crate) version: i32,
    pub(crate) id: u32,
    #[serde(rename = "schemaType", default)]
    pub(crate) schema_type: SchemaType,
    #[serde(default)]
    pub(crate) references: Vec<Reference>,
    pub(crate) schema: String,
}

/// A schema by id, as `GET /schemas/ids/{id}` answers it.
#[derive(Debug, Deserialize)]
struct SchemaById {
    #[serde(rename = "schemaType", default)]
    schema_type: SchemaType,
    #[serde(default)]
    references: Vec<Reference>,
    schema: String,
}

/// A registry's base URL and an HTTP client for it.
pub(crate) struct RegistryClient {
    /// Without credentials: it is what errors show.
    base: Url,
    /// From the URL's user and password, sent as basic authentication.
    credentials: Option<skiff_resolve::http::BasicAuth>,
    http: reqwest::Client,
}

impl RegistryClient {
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        let mut base = Url::parse(base)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or_else(|| {
                anyhow!("registry URL {base:?} is not an http(s) URL such as {DEFAULT_REGISTRY}")
            })?;
        let credentials = skiff_resolve::http::BasicAuth::take_from(&mut base);
        let http = skiff_resolve::http::client_builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("creating the HTTP client")?;
        Ok(Self { base, credentials, http })
    }

    /// Registers `text` under `subject`; answers its id (an identical schema keeps its id).
    pub(crate) async fn register(
        &self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> anyhow::Result<u32> {
        let body = schema_body(schema_type, text, references);
        let path = ["subjects", subject, "versions"];
        let answer = self.call(Method::POST, &path, &[], Some(body)).await?;
        field(&answer, "id")
    }

    /// Subject names, with soft-deleted ones if `deleted`.
    pub(crate) async fn subjects(&self, deleted: bool) -> anyhow::Result<Vec<String>> {
        let answer = self.call(Method::GET, &["subjects"], &deleted_query(deleted), None).await?;
        parse(answer)
    }

    /// One version (a number, or `latest`) of a subject.
    pub(crate) async fn version(
        &self,
        subject: &str,
        version: &str,
    ) -> anyhow::Result<SubjectVersion> {
        let path = ["subjects", subject, "versions", version];
        parse(self.call(Method::GET, &path, &[], None).await?)
    }

    /// Deletes a whole subject (`version` None) or one version; answers the versions deleted.
    /// `permanent` soft-deletes first where needed, as the registry requires.
    pub(crate) async fn delete(
        &self,
        subject: &str,
        version: Option<&str>,
        permanent: bool,
    ) -> anyhow::Result<Vec<i32>> {
        let mut path = vec!["subjects", subject];
        if let Some(version) = version {
            path.extend(["versions", version]);
        }
        let soft = self.call(Method::DELETE, &path, &[], None).await;
        let soft = match soft {
            Err(error)
                if permanent && is_code(&error, &[SUBJECT_SOFT_DELETED, VERSION_SOFT_DELETED]) =>
            {
                None
            }
            other => Some(other?),
        };
        let answer = if permanent {
            self.call(Method::DELETE, &path, &[("permanent", "true")], None).await?
        } else {
            soft.unwrap_or(Value::Null)
        };
        match answer {
            Value::Array(_) => parse(answer),
            single => Ok(vec![parse(single)?]),
        }
    }

    /// Whether `text` may become the subject's next version: `Ok(reasons)`, empty when it may.
    pub(crate) async fn incompatibilities(
        &self,
        subject: &str,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> anyhow::Result<Vec<String>> {
        let body = schema_body(schema_type, text, references);
        let path = ["compatibility", "subjects", subject, "versions"];
        let answer = self.call(Method::POST, &path, &[("verbose", "true")], Some(body)).await?;
        if answer.get("is_compatible").and_then(Value::as_bool) == Some(true) {
            return Ok(Vec::new());
        }
        let messages: Vec<String> = match answer.get("messages") {
            Some(messages) => parse(messages.clone())?,
            None => Vec::new(),
        };
        if messages.is_empty() {
            return Ok(vec!["the registry gave no reason".to_owned()]);
        }
        Ok(messages)
    }

    /// The schema with this id, parsed with its references resolved.
    pub(crate) async fn schema_by_id(&self, id: u32) -> anyhow::Result<Schema> {
        let id_text = id.to_string();
        let answer = self.call(Method::GET, &["schemas", "ids", &id_text], &[], None).await?;
        let found: SchemaById = parse(answer)?;
        self.parse_schema(found.schema_type, &found.schema, &found.references)
            .await
            .with_context(|| format!("schema id {id}"))
    }

    /// Parses a schema after looking up every schema its references reach.
    pub(crate) async fn parse_schema(
        &self,
        schema_type: SchemaType,
        text: &str,
        references: &[Reference],
    ) -> anyhow::Result<Schema> {
        let resolved = self.resolve_references(references).await?;
        Ok(Schema::parse(schema_type, text, &resolved)?)
    }

    /// The transitive closure of `references`, each under the name it is imported by.
    async fn resolve_references(
        &self,
        references: &[Reference],
    ) -> anyhow::Result<Vec<ResolvedReference>> {
        let mut pending: VecDeque<Reference> = references.iter().cloned().collect();
        let mut seen = HashSet::new();
        let mut resolved = Vec::new();
        while let Some(reference) = pending.pop_front() {
            if !seen.insert((reference.subject.clone(), reference.version)) {
                continue;
            }
            if seen.len() > MAX_REFERENCE_CLOSURE {
                bail!("the schema references more than {MAX_REFERENCE_CLOSURE} schemas");
            }
            let version = reference.version.to_string();
            let found = self
                .version(&reference.subject, &version)
                .await
                .with_context(|| format!("reference `{}`", reference.name))?;
            pending.extend(found.references);
            resolved.push(ResolvedReference {
                name: reference.name,
                schema_type: found.schema_type,
                text: found.schema,
            });
        }
        Ok(resolved)
    }

    /// One request; answers the JSON body of a success, a [`RegistryError`] for Confluent's
    /// error bodies.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = self.url(path, query)?;
        let mut request =
            self.http.request(method, url.clone()).header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(serde_json::to_vec(&body)?);
        }
        if let Some(credentials) = &self.credentials {
            request = credentials.apply(request);
        }
        // `skiff` prints errors with their causes (`{:#}`), which say why reqwest failed.
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the schema registry at {}; is it running? (set --registry or \
                 SKIFF_SCHEMA_REGISTRY)",
                self.base
            )
        })?;
        let status = response.status();
        let bytes =
            response.bytes().await.with_context(|| format!("reading the answer to {url}"))?;
        // Confluent's errors speak for themselves; anything else says which URL answered it.
        answer(status, &bytes).map_err(|error| {
            if error.is::<RegistryError>() {
                error
            } else {
                error.context(format!("{url}"))
            }
        })
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("registry URL {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }
}

/// Turns a response into its JSON, or the error it carries.
fn answer(status: StatusCode, bytes: &[u8]) -> anyhow::Result<Value> {
    let json = serde_json::from_slice::<Value>(bytes).ok();
    if status.is_success() {
        return json.ok_or_else(|| anyhow!("the registry answered something that is not JSON"));
    }
    let code = json.as_ref().and_then(|json| json.get("error_code")).and_then(Value::as_i64);
    let message = json.as_ref().and_then(|json| json.get("message")).and_then(Value::as_str);
    match (code, message) {
        (Some(code), Some(message)) => {
            Err(RegistryError { code, message: message.to_owned() }.into())
        }
        _ => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.chars().take(200).collect();
            bail!("the registry answered HTTP {status}: {text}")
        }
    }
}

/// Whether `error` is a registry answer with one of `codes`.
pub(crate) fn is_code(error: &anyhow::Error, codes: &[i64]) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<RegistryError>().is_some_and(|found| codes.contains(&found.code))
    })
}

fn schema_body(schema_type: SchemaType, text: &str, references: &[Reference]) -> Value {
    let mut body = json!({"schema": text, "schemaType": schema_type.as_str()});
    if !references.is_empty() {
        body["references"] = json!(references);
    }
    body
}

fn deleted_query(deleted: bool) -> Vec<(&'static str, &'static str)> {
    if deleted {
        vec![("deleted", "true")]
    } else {
        Vec::new()
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: Value) -> anyhow::Result<T> {
    serde_json::from_value(json).context("the registry's answer has an unexpected shape")
}

fn field<T: serde::de::DeserializeOwned>(json: &Value, name: &str) -> anyhow::Result<T> {
    let value =
        json.get(name).cloned().ok_or_else(|| anyhow!("the registry's answer has no `{name}`"))?;
    parse(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_errors_read_as_code_and_message() {
        let body = br#"{"error_code": 40401, "message": "Subject 'x' not found."}"#;
        let error = answer(StatusCode::NOT_FOUND, body).err();
        let text = error.as_ref().map(ToString::to_string);
        assert_eq!(text.as_deref(), Some("error 40401: Subject 'x' not found."));
        assert!(error.is_some_and(|error| is_code(&error, &[SUBJECT_NOT_FOUND])));
        let other = answer(StatusCode::BAD_GATEWAY, b"<html>down</html>").err();
        assert_eq!(
            other.map(|error| error.to_string()).as_deref(),
            Some("the registry answered HTTP 502 Bad Gateway: <html>down</html>")
        );
        assert_eq!(answer(StatusCode::OK, b"[1]").ok(), Some(json!([1])));
    }

    #[test]
    fn subjects_are_escaped_in_paths() -> anyhow::Result<()> {
        let client = RegistryClient::new("http://registry:8081/prefix/")?;
        let url = client.url(&["subjects", "a/b c", "versions"], &[("deleted", "true")])?;
        assert_eq!(
            url.as_str(),
            "http://registry:8081/prefix/subjects/a%2Fb%20c/versions?deleted=true"
        );
        Ok(())
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(RegistryClient::new("localhost:8081").is_err());
        assert!(RegistryClient::new("ftp://host").is_err());
        assert!(RegistryClient::new("https://registry.example").is_ok());
    }
}
