//! Listing subjects and versions, soft and permanent deletes, and who references a version.

use std::collections::BTreeSet;

use crate::cas::{self, Change};
use crate::error::{RegistryError, Result};
use crate::format::compatibility::Level;
use crate::register::read_only;
use crate::registry::{find_version, Registry, VersionSpec};
use crate::stored::{self, Mode, SubjectDoc};

impl Registry {
    /// Subjects with a live version (or any version, with `include_deleted`), by name.
    pub async fn subjects(&self, include_deleted: bool, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .all_subject_docs()
            .await?
            .into_iter()
            .filter(|(subject, doc)| {
                subject.starts_with(prefix) && doc.visible(include_deleted).next().is_some()
            })
            .map(|(subject, _)| subject)
            .collect())
    }

    /// The subject's version numbers, oldest first; 40401 if it has none.
    pub async fn versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<i32>> {
        let doc = self.subject_doc(subject).await?.unwrap_or_default();
        let versions: Vec<i32> = doc.visible(include_deleted).map(|entry| entry.version).collect();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_owned()));
        }
        Ok(versions)
    }

    /// Ids of the schemas of live versions that reference `subject` version `version`. Reads
    /// every subject's document (cheap look-ups for the schemas: they are cached by id).
    pub async fn referenced_by(&self, subject: &str, version: i32) -> Result<Vec<i32>> {
        let ids: BTreeSet<i32> = self
            .all_subject_docs()
            .await?
            .iter()
            .flat_map(|(_, doc)| doc.live().map(|entry| entry.id).collect::<Vec<_>>())
            .collect();
        let mut referencing = Vec::new();
        for id in ids {
            let Some(schema) = self.schema_by_id(id).await? else { continue };
            let references = schema.references.iter();
            if references.clone().any(|r| r.subject == subject && r.version == version) {
                referencing.push(id);
            }
        }
        Ok(referencing)
    }

    async fn refuse_if_referenced(&self, subject: &str, version: i32) -> Result<()> {
        if self.referenced_by(subject, version).await?.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::ReferenceExists { subject: subject.to_owned(), version })
        }
    }

    async fn refuse_if_read_only(&self, subject: &str) -> Result<()> {
        if self.effective::<Mode>(subject).await? == Mode::ReadOnly {
            return Err(read_only(subject));
        }
        Ok(())
    }

    /// Soft-deletes a version (it stays readable with `deleted=true`), or permanently deletes
    /// one that was soft-deleted before. Returns the version number.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<i32> {
        self.refuse_if_read_only(subject).await?;
        // `latest` of a soft delete is the newest live version.
        let include_deleted = permanent || spec != VersionSpec::Latest;
        let doc = self.subject_doc(subject).await?;
        let entry = find_version(subject, doc.as_ref(), spec, include_deleted)?;
        check_version_delete(subject, entry.deleted, entry.version, permanent)?;
        self.refuse_if_referenced(subject, entry.version).await?;
        let version = entry.version;
        let key = stored::subject_key(subject);
        cas::update(self.state.as_ref(), &key, |doc: Option<SubjectDoc>| async move {
            let mut doc = doc.unwrap_or_default();
            let Some(at) = doc.versions.iter().position(|entry| entry.version == version) else {
                return Err(RegistryError::VersionNotFound(version.to_string()));
            };
            check_version_delete(subject, doc.versions[at].deleted, version, permanent)?;
            if permanent {
                doc.versions.remove(at);
            } else {
                doc.versions[at].deleted = true;
            }
            if doc.versions.is_empty() {
                return Ok(Change::Delete(version));
            }
            Ok(Change::Write(doc, version))
        })
        .await?;
        tracing::info!(subject, version, permanent, "schema version deleted");
        Ok(version)
    }

    /// Soft-deletes every live version of a subject, or permanently deletes a subject whose
    /// versions were all soft-deleted (with its config and mode). Returns the versions deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>> {
        self.refuse_if_read_only(subject).await?;
        let doc = self.subject_doc(subject).await?.unwrap_or_default();
        check_subject_delete(subject, &doc, permanent)?;
        for entry in doc.versions.iter() {
            self.refuse_if_referenced(subject, entry.version).await?;
        }
        let key = stored::subject_key(subject);
        let deleted =
            cas::update(self.state.as_ref(), &key, |doc: Option<SubjectDoc>| async move {
                let mut doc = doc.unwrap_or_default();
                check_subject_delete(subject, &doc, permanent)?;
                if permanent {
                    let versions = doc.versions.iter().map(|entry| entry.version).collect();
                    return Ok(Change::Delete(versions));
                }
                let mut versions = Vec::new();
                for entry in doc.versions.iter_mut().filter(|entry| !entry.deleted) {
                    entry.deleted = true;
                    versions.push(entry.version);
                }
                Ok(Change::Write(doc, versions))
            })
            .await?;
        if permanent {
            self.forget::<Level>(Some(subject)).await?;
            self.forget::<Mode>(Some(subject)).await?;
        }
        tracing::info!(subject, permanent, versions = ?deleted, "subject deleted");
        Ok(deleted)
    }
}

/// 40406 for a soft delete of a soft-deleted version, 40407 for a permanent delete of a live one.
fn check_version_delete(subject: &str, deleted: bool, version: i32, permanent: bool) -> Result<()> {
    match (permanent, deleted) {
        (false, true) => {
            Err(RegistryError::VersionSoftDeleted { subject: subject.to_owned(), version })
        }
        (true, false) => {
            Err(RegistryError::VersionNotSoftDeleted { subject: subject.to_owned(), version })
        }
        _ => Ok(()),
    }
}

/// 40401 without versions, 40404 for a soft delete of a soft-deleted subject, 40405 for a
/// permanent delete of a subject with live versions.
fn check_subject_delete(subject: &str, doc: &SubjectDoc, permanent: bool) -> Result<()> {
    if doc.versions.is_empty() {
        return Err(RegistryError::SubjectNotFound(subject.to_owned()));
    }
    let live = doc.live().next().is_some();
    match (permanent, live) {
        (false, false) => Err(RegistryError::SubjectSoftDeleted(subject.to_owned())),
        (true, true) => Err(RegistryError::SubjectNotSoftDeleted(subject.to_owned())),
        _ => Ok(()),
    }
}
