//! [`Registry`]: the registry's state in storage, read and changed by any broker, and the
//! look-ups the broker's produce path uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use skiff_storage::{StateStore, StorageError};

use crate::error::{RegistryError, Result};
use crate::format::{self, Reference, ResolvedReference, Schema, SchemaType};
use crate::stored::{self, decode, StoredResolved, StoredSchema, SubjectDoc};

/// Parsed schemas kept per broker; ids are immutable, so a cached entry never goes stale. The
/// cache is emptied when it reaches this many entries.
const CACHE_ENTRIES: usize = 10_000;

/// A schema under its cluster-wide id, parsed once.
#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: i32,
    pub schema_type: SchemaType,
    /// The text as first registered.
    pub text: String,
    /// The references as registered (concrete versions).
    pub references: Vec<Reference>,
    /// Their transitive closure, as resolved at registration.
    pub(crate) resolved: Vec<StoredResolved>,
    /// The parsed schema, for validating payloads (shared with validators).
    pub schema: Arc<Schema>,
}

/// A version of a subject.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub deleted: bool,
    pub schema: Arc<RegisteredSchema>,
}

/// Which version of a subject a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest live version (`latest` or `-1`).
    Latest,
    Number(i32),
}

impl VersionSpec {
    /// Parses a version path segment: `latest`, `-1`, or 1..=2^31-1; 42202 otherwise.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "latest" {
            return Ok(Self::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(Self::Latest),
            Ok(number) if number >= 1 => Ok(Self::Number(number)),
            _ => Err(RegistryError::InvalidVersion(text.to_owned())),
        }
    }
}

/// The Schema Registry over one storage engine's [`StateStore`]. Every fact is in storage, so
/// any number of registries (one per broker) on the same storage serve the same ids, subjects
/// and versions; the only memory is a cache of immutable schemas by id.
pub struct Registry {
    pub(crate) state: Arc<dyn StateStore>,
    cache: Mutex<HashMap<i32, Arc<RegisteredSchema>>>,
}

impl Registry {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state, cache: Mutex::new(HashMap::new()) }
    }

    /// The schema with this id, parsed (cached: ids never change meaning). `None` if no
    /// schema has this id.
    pub async fn schema_by_id(&self, id: i32) -> Result<Option<Arc<RegisteredSchema>>> {
        if let Some(found) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(Some(found.clone()));
        }
        let key = stored::schema_key(id);
        let Some(value) = self.state.get(&key).await? else { return Ok(None) };
        let stored: StoredSchema = decode(&key, &value.value)?;
        let registered = Arc::new(parse_stored(id, stored).map_err(|error| {
            RegistryError::Store(StorageError::Corrupt(format!("{key}: {error}")))
        })?);
        self.cache_schema(registered.clone());
        Ok(Some(registered))
    }

    /// Remembers a schema this broker just stored.
    pub(crate) fn cache_schema(&self, registered: Arc<RegisteredSchema>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(registered.id, registered);
    }

    /// Like [`Registry::schema_by_id`], but a missing id is 40403.
    pub(crate) async fn existing_schema(&self, id: i32) -> Result<Arc<RegisteredSchema>> {
        self.schema_by_id(id).await?.ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))
    }

    /// The subject's document and nothing else: `None` if the subject was never registered or
    /// was permanently deleted.
    pub(crate) async fn subject_doc(&self, subject: &str) -> Result<Option<SubjectDoc>> {
        let key = stored::subject_key(subject);
        match self.state.get(&key).await? {
            Some(value) => Ok(Some(decode(&key, &value.value)?)),
            None => Ok(None),
        }
    }

    /// Every subject document, ordered by subject name. Costs one list of `registry/subjects/`.
    pub(crate) async fn all_subject_docs(&self) -> Result<Vec<(String, SubjectDoc)>> {
        let listed = self.state.list(stored::SUBJECTS).await?;
        listed
            .into_iter()
            .map(|(key, value)| {
                let doc: SubjectDoc = decode(&key, &value.value)?;
                let subject = key.strip_prefix(stored::SUBJECTS).unwrap_or(&key).to_owned();
                Ok((subject, doc))
            })
            .collect()
    }

    /// The (version, id) pairs of the subject's live versions, oldest first; empty if the
    /// subject has none. One storage read, for checking that a record's schema id belongs to
    /// its subject.
    pub async fn version_ids(&self, subject: &str) -> Result<Vec<(i32, i32)>> {
        Ok(self
            .subject_doc(subject)
            .await?
            .map(|doc| doc.live().map(|entry| (entry.version, entry.id)).collect())
            .unwrap_or_default())
    }

    /// The newest live version of the subject, `None` if it has none.
    pub async fn latest(&self, subject: &str) -> Result<Option<SubjectVersion>> {
        match self.version(subject, VersionSpec::Latest, false).await {
            Ok(found) => Ok(Some(found)),
            Err(RegistryError::SubjectNotFound(_) | RegistryError::VersionNotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The subjects with a live version using this schema id, ordered by name. Lists every
    /// subject: for the admin API; the produce path should use [`Registry::version_ids`].
    pub async fn subjects_of(&self, id: i32) -> Result<Vec<String>> {
        let versions = self.subject_versions_of(id, false).await?;
        let mut subjects: Vec<String> = versions.into_iter().map(|(subject, _)| subject).collect();
        subjects.dedup();
        Ok(subjects)
    }

    /// Every (subject, version) using this schema id.
    pub async fn subject_versions_of(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<Vec<(String, i32)>> {
        let mut found = Vec::new();
        for (subject, doc) in self.all_subject_docs().await? {
            for entry in doc.visible(include_deleted).filter(|entry| entry.id == id) {
                found.push((subject.clone(), entry.version));
            }
        }
        Ok(found)
    }

    /// One version of a subject; soft-deleted versions only with `include_deleted`.
    pub async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<SubjectVersion> {
        let doc = self.subject_doc(subject).await?;
        let entry = find_version(subject, doc.as_ref(), spec, include_deleted)?;
        let schema = self.existing_schema(entry.id).await?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: entry.version,
            id: entry.id,
            deleted: entry.deleted,
            schema,
        })
    }
}

/// Finds a version in a subject's document: 40401 if the subject has no visible version,
/// 40402 if this one is not there.
pub(crate) fn find_version(
    subject: &str,
    doc: Option<&SubjectDoc>,
    spec: VersionSpec,
    include_deleted: bool,
) -> Result<stored::VersionEntry> {
    let Some(doc) = doc.filter(|doc| doc.visible(include_deleted).next().is_some()) else {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    };
    let found = match spec {
        VersionSpec::Latest => doc.visible(include_deleted).max_by_key(|entry| entry.version),
        VersionSpec::Number(number) => {
            doc.visible(include_deleted).find(|entry| entry.version == number)
        }
    };
    found.copied().ok_or_else(|| {
        RegistryError::VersionNotFound(match spec {
            VersionSpec::Latest => "latest".to_owned(),
            VersionSpec::Number(number) => number.to_string(),
        })
    })
}

/// Parses a stored schema with the reference closure stored beside it.
fn parse_stored(id: i32, stored: StoredSchema) -> Result<RegisteredSchema, String> {
    let schema_type: SchemaType = stored.schema_type.parse().map_err(|error| format!("{error}"))?;
    let resolved = resolved_references(&stored.resolved)?;
    let schema = format::parse(schema_type, &stored.schema, &resolved)?;
    Ok(RegisteredSchema {
        id,
        schema_type,
        text: stored.schema,
        references: stored.references,
        resolved: stored.resolved,
        schema: Arc::new(schema),
    })
}

pub(crate) fn resolved_references(
    stored: &[stored::StoredResolved],
) -> Result<Vec<ResolvedReference>, String> {
    stored
        .iter()
        .map(|reference| {
            Ok(ResolvedReference {
                name: reference.name.clone(),
                schema_type: reference.schema_type.parse().map_err(|error| format!("{error}"))?,
                text: reference.schema.clone(),
            })
        })
        .collect()
}
