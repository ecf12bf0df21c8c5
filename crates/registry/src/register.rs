//! Registering a schema under a subject, looking one up, and compatibility checks.
//!
//! Registration is three steps, each safe to race with any other broker:
//! 1. the schema's id: the fingerprint index says whether an identical schema has one; if not,
//!    an id is taken from the counter and the fingerprint created with it (create-if-absent:
//!    of two brokers racing, one index entry wins and both use its id);
//! 2. the schema's document under its id, created if absent (so an index entry whose writer died
//!    before this step is completed by the next registration of the same schema);
//! 3. the new version appended to the subject's document by compare-and-set: of two racing
//!    registrations one is re-read and re-checked, so they get versions n and n+1.

use std::sync::Arc;

use skiff_storage::StorageError;

use crate::cas::{self, Change};
use crate::error::{RegistryError, Result};
use crate::format::{self, compatibility::Level, Reference, Schema, SchemaType};
use crate::registry::{
    resolved_references, RegisteredSchema, Registry, SubjectVersion, VersionSpec,
};
use crate::stored::{
    self, decode, encode, Counter, FingerprintDoc, Mode, StoredResolved, StoredSchema, SubjectDoc,
    VersionEntry,
};

/// Most schemas in the reference closure of one schema.
const MAX_RESOLVED_REFERENCES: usize = 1000;

/// A schema as a client submits it.
#[derive(Debug, Clone, Default)]
pub struct NewSchema {
    pub schema_type: SchemaType,
    pub text: String,
    pub references: Vec<Reference>,
    /// The id to register under (IMPORT mode only).
    pub id: Option<i32>,
    /// The version to register as (IMPORT mode only).
    pub version: Option<i32>,
}

/// What a registration produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub id: i32,
    pub version: i32,
}

/// A submitted schema, its references resolved, parsed and fingerprinted.
struct Prepared {
    schema_type: SchemaType,
    text: String,
    references: Vec<Reference>,
    resolved: Vec<StoredResolved>,
    schema: Schema,
    fingerprint: String,
}

impl Registry {
    /// Registers `new` under `subject`: the existing version if the subject already has this
    /// schema, else a new version (checked against the subject's compatibility level).
    pub async fn register(&self, subject: &str, new: NewSchema) -> Result<Registered> {
        let mode = self.effective::<Mode>(subject).await?;
        if mode == Mode::ReadOnly {
            return Err(read_only(subject));
        }
        if (new.id.is_some() || new.version.is_some()) && mode != Mode::Import {
            return Err(RegistryError::OperationNotPermitted(format!(
                "Subject {subject} is not in import mode; an id or version may not be given"
            )));
        }
        let prepared = Arc::new(self.prepare(&new).await?);
        let level = if mode == Mode::Import {
            Level::None
        } else {
            self.effective::<Level>(subject).await?
        };
        let known = match new.id {
            Some(id) => Some(self.import_id(id, &prepared).await?),
            None => self.id_for_fingerprint(&prepared.fingerprint).await?,
        };
        // Refuse early, before an id is taken for a schema that will not be registered.
        let doc = self.subject_doc(subject).await?.unwrap_or_default();
        if let Some(done) = self.already_registered(subject, &doc, known, &prepared, level).await? {
            return Ok(done);
        }
        let id = match known {
            Some(id) => id,
            None => self.id_for_schema(&prepared).await?,
        };
        let wanted_version = new.version;
        let key = stored::subject_key(subject);
        let registered = cas::update(self.state.as_ref(), &key, |doc: Option<SubjectDoc>| {
            let prepared = prepared.clone();
            async move {
                let mut doc = doc.unwrap_or_default();
                let done =
                    self.already_registered(subject, &doc, Some(id), &prepared, level).await?;
                if let Some(done) = done {
                    return Ok(Change::Keep(done));
                }
                let version = match wanted_version {
                    Some(version) if doc.versions.iter().any(|entry| entry.version == version) => {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Version {version} of subject {subject} already exists"
                        )))
                    }
                    Some(version) if version >= 1 => version,
                    Some(version) => {
                        return Err(RegistryError::InvalidVersion(version.to_string()))
                    }
                    None => doc.next_version(),
                };
                doc.versions.push(VersionEntry { version, id, deleted: false });
                doc.versions.sort_by_key(|entry| entry.version);
                Ok(Change::Write(doc, Registered { id, version }))
            }
        })
        .await?;
        tracing::info!(
            subject,
            id = registered.id,
            version = registered.version,
            "schema registered"
        );
        Ok(registered)
    }

    /// `Some` if the subject already has this schema as a live version; an error if appending
    /// it would break the compatibility level; `None` if it may be appended.
    async fn already_registered(
        &self,
        subject: &str,
        doc: &SubjectDoc,
        id: Option<i32>,
        prepared: &Prepared,
        level: Level,
    ) -> Result<Option<Registered>> {
        if let Some(id) = id {
            if let Some(entry) = doc.live().filter(|entry| entry.id == id).max_by_key(|e| e.version)
            {
                return Ok(Some(Registered { id, version: entry.version }));
            }
        }
        let previous = self.live_schemas(doc).await?;
        let messages = compatibility_messages(level, prepared, &previous);
        if messages.is_empty() {
            Ok(None)
        } else {
            Err(RegistryError::Incompatible { subject: subject.to_owned(), messages })
        }
    }

    /// The schemas of the live versions, oldest first.
    async fn live_schemas(&self, doc: &SubjectDoc) -> Result<Vec<Arc<RegisteredSchema>>> {
        let mut schemas = Vec::new();
        for entry in doc.live() {
            schemas.push(self.existing_schema(entry.id).await?);
        }
        Ok(schemas)
    }

    /// Finds `new` among the subject's versions (POST /subjects/{subject}).
    pub async fn lookup(
        &self,
        subject: &str,
        new: &NewSchema,
        include_deleted: bool,
    ) -> Result<SubjectVersion> {
        let doc = self.subject_doc(subject).await?;
        let Some(doc) = doc.filter(|doc| doc.visible(include_deleted).next().is_some()) else {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        };
        let prepared = self.prepare(new).await?;
        let not_found = || RegistryError::SchemaNotFound("not found".to_owned());
        let id = self.id_for_fingerprint(&prepared.fingerprint).await?.ok_or_else(not_found)?;
        let entry = doc
            .visible(include_deleted)
            .filter(|entry| entry.id == id)
            .max_by_key(|entry| entry.version)
            .copied()
            .ok_or_else(not_found)?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            version: entry.version,
            id,
            deleted: entry.deleted,
            schema: self.existing_schema(id).await?,
        })
    }

    /// Checks `new` against the subject's compatibility level: against one version, against
    /// the live versions the level looks at (`Latest`), or against all of them (`None`, which
    /// also accepts a subject without versions). Empty: compatible.
    pub async fn check_compatibility(
        &self,
        subject: &str,
        against: Option<VersionSpec>,
        new: &NewSchema,
    ) -> Result<Vec<String>> {
        let doc = self.subject_doc(subject).await?;
        let previous = match against {
            None => self.live_schemas(&doc.unwrap_or_default()).await?,
            Some(VersionSpec::Latest) => {
                crate::registry::find_version(subject, doc.as_ref(), VersionSpec::Latest, false)?;
                self.live_schemas(&doc.unwrap_or_default()).await?
            }
            Some(spec) => {
                let entry = crate::registry::find_version(subject, doc.as_ref(), spec, false)?;
                vec![self.existing_schema(entry.id).await?]
            }
        };
        let prepared = self.prepare(new).await?;
        let level = self.effective::<Level>(subject).await?;
        Ok(compatibility_messages(level, &prepared, &previous))
    }

    /// Resolves references (each must name an existing live version: 42201 otherwise), parses
    /// the schema with their transitive closure and fingerprints it.
    async fn prepare(&self, new: &NewSchema) -> Result<Prepared> {
        let mut references = Vec::with_capacity(new.references.len());
        let mut resolved: Vec<StoredResolved> = Vec::new();
        for reference in &new.references {
            if reference.name.is_empty() || reference.subject.is_empty() {
                return Err(RegistryError::InvalidSchema(
                    "a reference needs a name, a subject and a version".to_owned(),
                ));
            }
            let spec = match reference.version {
                -1 => VersionSpec::Latest,
                number if number >= 1 => VersionSpec::Number(number),
                number => {
                    return Err(RegistryError::InvalidSchema(format!(
                        "reference {} has invalid version {number}",
                        reference.name
                    )))
                }
            };
            let found = match self.version(&reference.subject, spec, false).await {
                Ok(found) => found,
                Err(RegistryError::SubjectNotFound(_) | RegistryError::VersionNotFound(_)) => {
                    return Err(RegistryError::InvalidSchema(format!(
                        "reference {} names subject '{}' version {}, which does not exist",
                        reference.name, reference.subject, reference.version
                    )))
                }
                Err(error) => return Err(error),
            };
            references.push(Reference {
                name: reference.name.clone(),
                subject: reference.subject.clone(),
                version: found.version,
            });
            let closure = found.schema.resolved.iter().cloned().chain([StoredResolved {
                name: reference.name.clone(),
                schema_type: found.schema.schema_type.to_string(),
                schema: found.schema.text.clone(),
            }]);
            for item in closure {
                if !resolved.iter().any(|known| known.name == item.name) {
                    resolved.push(item);
                }
            }
            if resolved.len() > MAX_RESOLVED_REFERENCES {
                return Err(RegistryError::InvalidSchema(format!(
                    "more than {MAX_RESOLVED_REFERENCES} schemas referenced"
                )));
            }
        }
        let closure = resolved_references(&resolved).map_err(RegistryError::InvalidSchema)?;
        let schema = format::parse(new.schema_type, &new.text, &closure)
            .map_err(RegistryError::InvalidSchema)?;
        let fingerprint = stored::fingerprint(new.schema_type, &schema.canonical(), &references);
        Ok(Prepared {
            schema_type: new.schema_type,
            text: new.text.clone(),
            references,
            resolved,
            schema,
            fingerprint,
        })
    }

    /// The id an identical schema already has, if any.
    async fn id_for_fingerprint(&self, fingerprint: &str) -> Result<Option<i32>> {
        let key = stored::fingerprint_key(fingerprint);
        match self.state.get(&key).await? {
            Some(value) => Ok(Some(decode::<FingerprintDoc>(&key, &value.value)?.id)),
            None => Ok(None),
        }
    }

    /// The id of this schema, taking a new one if no identical schema has one, with the
    /// schema's document stored under it.
    async fn id_for_schema(&self, prepared: &Prepared) -> Result<i32> {
        let key = stored::fingerprint_key(&prepared.fingerprint);
        loop {
            if let Some(id) = self.id_for_fingerprint(&prepared.fingerprint).await? {
                self.store_schema(id, prepared).await?;
                return Ok(id);
            }
            let id = self.allocate_id().await?;
            match self.state.put(&key, encode(&FingerprintDoc { id }), None).await {
                Ok(_) => {
                    self.store_schema(id, prepared).await?;
                    return Ok(id);
                }
                // Another broker indexed the same schema first: use its id (ours stays unused).
                Err(StorageError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Creates the schema's document under `id` unless it exists.
    async fn store_schema(&self, id: i32, prepared: &Prepared) -> Result<()> {
        if self.schema_by_id(id).await?.is_some() {
            return Ok(());
        }
        let document = StoredSchema {
            schema_type: prepared.schema_type.to_string(),
            schema: prepared.text.clone(),
            references: prepared.references.clone(),
            resolved: prepared.resolved.clone(),
        };
        match self.state.put(&stored::schema_key(id), encode(&document), None).await {
            Ok(_) | Err(StorageError::Conflict(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Takes the next id from the cluster-wide counter.
    async fn allocate_id(&self) -> Result<i32> {
        cas::update(self.state.as_ref(), stored::NEXT_ID, |counter: Option<Counter>| async move {
            let id = counter.map_or(1, |counter| counter.next);
            let next = id.checked_add(1).ok_or_else(|| {
                RegistryError::Store(StorageError::InvalidArgument(
                    "schema ids exhausted".to_owned(),
                ))
            })?;
            Ok(Change::Write(Counter { next }, id))
        })
        .await
    }

    /// IMPORT mode: registers the schema under the id the client names, which must be free or
    /// already hold this very schema; later ids are allocated above it.
    async fn import_id(&self, id: i32, prepared: &Prepared) -> Result<i32> {
        if id < 1 {
            return Err(RegistryError::BadRequest(format!("invalid schema id {id}")));
        }
        if let Some(existing) = self.schema_by_id(id).await? {
            let same = stored::fingerprint(
                existing.schema_type,
                &existing.schema.canonical(),
                &existing.references,
            ) == prepared.fingerprint;
            if !same {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Overwrite new schema with id {id} is not permitted."
                )));
            }
        } else {
            self.store_schema(id, prepared).await?;
        }
        let key = stored::fingerprint_key(&prepared.fingerprint);
        match self.state.put(&key, encode(&FingerprintDoc { id }), None).await {
            Ok(_) | Err(StorageError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
        cas::update(self.state.as_ref(), stored::NEXT_ID, |counter: Option<Counter>| async move {
            let next = counter.map_or(1, |counter| counter.next);
            if next > id {
                return Ok(Change::Keep(()));
            }
            Ok(Change::Write(Counter { next: id.saturating_add(1) }, ()))
        })
        .await?;
        Ok(id)
    }
}

pub(crate) fn read_only(subject: &str) -> RegistryError {
    RegistryError::OperationNotPermitted(format!("Subject {subject} is in read-only mode"))
}

/// Why `new` may not follow `previous` (oldest first) under `level`; empty if it may.
fn compatibility_messages(
    level: Level,
    new: &Prepared,
    previous: &[Arc<RegisteredSchema>],
) -> Vec<String> {
    if level == Level::None || previous.is_empty() {
        return Vec::new();
    }
    if let Some(other) = previous.iter().find(|schema| schema.schema_type != new.schema_type) {
        return vec![format!(
            "Incompatible schema type: {} cannot follow {} (schema id {})",
            new.schema_type, other.schema_type, other.id
        )];
    }
    let previous: Vec<&Schema> = previous.iter().map(|schema| schema.schema.as_ref()).collect();
    format::compatibility::check(level, &new.schema, &previous)
}
