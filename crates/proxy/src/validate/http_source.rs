//! A Schema Registry over HTTP as the validator's schema source: Skiff's registry or
//! Confluent's, through the REST routes their serializers use.
//!
//! - A schema by id: `GET /schemas/ids/{id}` (`{schema, schemaType?, references?}`); each
//!   reference is resolved with `GET /subjects/{subject}/versions/{version}`, transitively.
//!   Ids never change meaning, so parsed schemas are kept forever (the cache is emptied beyond
//!   [`CACHE_ENTRIES`]); an unknown id is remembered for [`SUBJECT_TTL`].
//! - A subject: `GET /subjects/{subject}/versions` (the live version numbers), and each
//!   version's id from `GET /subjects/{subject}/versions/{version}` the first time it is seen.
//!   What a subject looks like is trusted for [`SUBJECT_TTL`].
//!
//! Every request has a timeout; a failure (unreachable, timeout, HTTP 5xx, an answer that is
//! not the expected JSON) is [`CheckError::Unavailable`], never a verdict on the records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use skiff_schema::validator::{CheckError, SchemaSource, SubjectInfo};
use skiff_schema::{Reference, ResolvedReference, Schema, SchemaType};

use crate::error::with_causes;

/// How long what the proxy read about a subject (or an unknown id) is trusted.
pub(crate) const SUBJECT_TTL: Duration = Duration::from_secs(1);
/// Schemas, subjects or versions remembered at most per cache; a full cache is emptied.
const CACHE_ENTRIES: usize = 10_000;
/// Most schemas one schema's references may pull in.
const MAX_REFERENCES: usize = 1000;

/// `GET /schemas/ids/{id}` and `GET /subjects/{s}/versions/{v}` (the fields used).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaAnswer {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    id: Option<i32>,
}

struct CachedSubject {
    read_at: Instant,
    info: Arc<SubjectInfo>,
}

#[derive(Default)]
struct Caches {
    schemas: HashMap<i32, Arc<Schema>>,
    unknown_ids: HashMap<i32, Instant>,
    subjects: HashMap<String, CachedSubject>,
    /// (subject, version) -> id: a version's id does not change while it exists.
    version_ids: HashMap<(String, i32), i32>,
}

/// A Schema Registry reached over HTTP.
pub struct HttpSchemaSource {
    /// Without credentials: it is what logs and errors show.
    base: Url,
    /// From the URL's user and password, sent as basic authentication.
    credentials: Option<skiff_resolve::http::BasicAuth>,
    client: reqwest::Client,
    caches: Mutex<Caches>,
}

impl HttpSchemaSource {
    /// `base` is the registry's URL (`http://registry:8081`, a path prefix is kept); every
    /// request gives up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let mut base = Url::parse(base).map_err(|error| format!("{base}: {error}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!("{base}: expected an http:// or https:// URL"));
        }
        if let Ok(mut path) = base.path_segments_mut() {
            path.pop_if_empty();
        }
        let credentials = skiff_resolve::http::BasicAuth::take_from(&mut base);
        let client = skiff_resolve::http::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
        Ok(Self { base, credentials, client, caches: Mutex::new(Caches::default()) })
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// GETs `segments` as JSON; `Ok(None)` for a 404.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>, CheckError> {
        let url = self.url(segments);
        let failed = |reason: String| {
            tracing::warn!(%url, %reason, "schema registry request failed");
            CheckError::Unavailable(format!("GET {url}: {reason}"))
        };
        let mut request = self
            .client
            .get(url.clone())
            .header("accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some(credentials) = &self.credentials {
            request = credentials.apply(request);
        }
        let response = request.send().await.map_err(|error| failed(with_causes(&error)))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let body = response.bytes().await.map_err(|error| failed(with_causes(&error)))?;
        serde_json::from_slice(&body).map(Some).map_err(|error| failed(error.to_string()))
    }

    /// Looks up and parses the schema `id`, its references resolved.
    async fn fetch_schema(&self, id: i32) -> Result<Option<Schema>, CheckError> {
        let Some(answer) = self.get::<SchemaAnswer>(&["schemas", "ids", &id.to_string()]).await?
        else {
            return Ok(None);
        };
        let schema_type = schema_type(answer.schema_type.as_deref())?;
        let references = self.resolve(answer.references).await?;
        // A registry that serves a schema it cannot parse is broken, not the records.
        Schema::parse(schema_type, &answer.schema, &references)
            .map(Some)
            .map_err(|error| CheckError::Unavailable(format!("schema id {id}: {error}")))
    }

    /// The transitive closure of `references`, each under the name it is imported by.
    async fn resolve(
        &self,
        references: Vec<Reference>,
    ) -> Result<Vec<ResolvedReference>, CheckError> {
        let mut pending = references;
        let mut resolved: Vec<ResolvedReference> = Vec::new();
        while let Some(reference) = pending.pop() {
            if resolved.iter().any(|known| known.name == reference.name) {
                continue;
            }
            if resolved.len() >= MAX_REFERENCES {
                return Err(CheckError::Unavailable(format!(
                    "a schema references more than {MAX_REFERENCES} schemas"
                )));
            }
            let version = reference.version.to_string();
            let segments = ["subjects", reference.subject.as_str(), "versions", &version];
            let Some(answer) = self.get::<SchemaAnswer>(&segments).await? else {
                return Err(CheckError::Unavailable(format!(
                    "reference {} (subject {} version {}) not found",
                    reference.name, reference.subject, reference.version
                )));
            };
            let schema_type = schema_type(answer.schema_type.as_deref())?;
            pending.extend(answer.references);
            resolved.push(ResolvedReference {
                name: reference.name,
                schema_type,
                text: answer.schema,
            });
        }
        Ok(resolved)
    }

    /// The id of a subject's version, from the cache or the registry.
    async fn version_id(&self, subject: &str, version: i32) -> Result<Option<i32>, CheckError> {
        let key = (subject.to_owned(), version);
        if let Some(&id) = self.caches().version_ids.get(&key) {
            return Ok(Some(id));
        }
        let number = version.to_string();
        let answer = self.get::<SchemaAnswer>(&["subjects", subject, "versions", &number]).await?;
        let Some(id) = answer.and_then(|answer| answer.id) else { return Ok(None) };
        let mut caches = self.caches();
        if caches.version_ids.len() >= CACHE_ENTRIES {
            caches.version_ids.clear();
        }
        caches.version_ids.insert(key, id);
        Ok(Some(id))
    }
}

#[async_trait]
impl SchemaSource for HttpSchemaSource {
    async fn by_id(&self, id: i32) -> Result<Option<Arc<Schema>>, CheckError> {
        {
            let caches = self.caches();
            if let Some(schema) = caches.schemas.get(&id) {
                return Ok(Some(schema.clone()));
            }
            if caches.unknown_ids.get(&id).is_some_and(|at| at.elapsed() < SUBJECT_TTL) {
                return Ok(None);
            }
        }
        let found = self.fetch_schema(id).await?.map(Arc::new);
        let mut caches = self.caches();
        match &found {
            Some(schema) => {
                if caches.schemas.len() >= CACHE_ENTRIES {
                    caches.schemas.clear();
                }
                caches.schemas.insert(id, schema.clone());
            }
            None => {
                if caches.unknown_ids.len() >= CACHE_ENTRIES {
                    caches.unknown_ids.clear();
                }
                caches.unknown_ids.insert(id, Instant::now());
            }
        }
        Ok(found)
    }

    async fn subject(&self, subject: &str) -> Result<Arc<SubjectInfo>, CheckError> {
        if let Some(cached) = self.caches().subjects.get(subject) {
            if cached.read_at.elapsed() < SUBJECT_TTL {
                return Ok(cached.info.clone());
            }
        }
        let read_at = Instant::now();
        let versions =
            self.get::<Vec<i32>>(&["subjects", subject, "versions"]).await?.unwrap_or_default();
        let mut ids = Vec::with_capacity(versions.len());
        for version in versions {
            // A version deleted since the listing is simply not live any more.
            if let Some(id) = self.version_id(subject, version).await? {
                ids.push(id);
            }
        }
        let latest = match ids.last() {
            Some(&id) => self.by_id(id).await?,
            None => None,
        };
        let info = Arc::new(SubjectInfo { ids, latest });
        let mut caches = self.caches();
        if caches.subjects.len() >= CACHE_ENTRIES {
            caches.subjects.clear();
        }
        caches.subjects.insert(subject.to_owned(), CachedSubject { read_at, info: info.clone() });
        Ok(info)
    }
}

fn schema_type(name: Option<&str>) -> Result<SchemaType, CheckError> {
    match name {
        None => Ok(SchemaType::Avro),
        Some(name) => name.parse().map_err(|error| CheckError::Unavailable(format!("{error}"))),
    }
}
