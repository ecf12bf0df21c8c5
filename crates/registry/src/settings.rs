//! Settings kept globally and per subject: the compatibility level and the mode. Both work the
//! same way (a subject's own value, else the global one, else the default), so one generic
//! [`Setting`] serves both.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use skiff_storage::StorageError;

use crate::cas::{self, Change};
use crate::error::{RegistryError, Result};
use crate::format::compatibility::Level;
use crate::registry::Registry;
use crate::stored::{self, decode, Mode};

/// A setting with a global value and optional per-subject overrides.
pub trait Setting: Copy + Default + fmt::Display + Send + Sync + 'static {
    /// The JSON field it is stored and set (`PUT`) under.
    const FIELD: &'static str;
    /// The JSON field `GET` and `DELETE` answer with.
    const ANSWER_FIELD: &'static str;
    /// The key of the global value.
    const GLOBAL_KEY: &'static str;

    /// The key of a subject's own value.
    fn subject_key(subject: &str) -> String;
    /// Parses a name (any letter case); the setting's 422 code otherwise.
    fn parse(text: &str) -> Result<Self>;
    /// The subject has no value of its own (404).
    fn not_configured(subject: &str) -> RegistryError;
}

impl Setting for Level {
    const FIELD: &'static str = "compatibility";
    const ANSWER_FIELD: &'static str = "compatibilityLevel";
    const GLOBAL_KEY: &'static str = stored::GLOBAL_CONFIG;

    fn subject_key(subject: &str) -> String {
        stored::subject_config_key(subject)
    }

    fn parse(text: &str) -> Result<Self> {
        Level::from_str(&text.to_ascii_uppercase())
            .map_err(|_| RegistryError::InvalidCompatibilityLevel(text.to_owned()))
    }

    fn not_configured(subject: &str) -> RegistryError {
        RegistryError::SubjectConfigNotFound(subject.to_owned())
    }
}

impl Setting for Mode {
    const FIELD: &'static str = "mode";
    const ANSWER_FIELD: &'static str = "mode";
    const GLOBAL_KEY: &'static str = stored::GLOBAL_MODE;

    fn subject_key(subject: &str) -> String {
        stored::subject_mode_key(subject)
    }

    fn parse(text: &str) -> Result<Self> {
        Mode::from_str(text).map_err(|_| RegistryError::InvalidMode(text.to_owned()))
    }

    fn not_configured(subject: &str) -> RegistryError {
        RegistryError::SubjectModeNotFound(subject.to_owned())
    }
}

/// The stored document: `{"<FIELD>": "<name>"}`.
type SettingDoc = BTreeMap<String, String>;

fn key_of<S: Setting>(subject: Option<&str>) -> String {
    subject.map_or_else(|| S::GLOBAL_KEY.to_owned(), S::subject_key)
}

impl Registry {
    /// The value set for `subject` itself (`None`: the global value), if any.
    pub async fn setting<S: Setting>(&self, subject: Option<&str>) -> Result<Option<S>> {
        let key = key_of::<S>(subject);
        let Some(value) = self.state.get(&key).await? else { return Ok(None) };
        let doc: SettingDoc = decode(&key, &value.value)?;
        let name = doc.get(S::FIELD).ok_or_else(|| {
            RegistryError::Store(StorageError::Corrupt(format!("{key}: no {}", S::FIELD)))
        })?;
        S::parse(name).map(Some)
    }

    /// The global value, or the default (BACKWARD, READWRITE).
    pub async fn global<S: Setting>(&self) -> Result<S> {
        Ok(self.setting(None).await?.unwrap_or_default())
    }

    /// The value that governs `subject`: its own, else the global one.
    pub async fn effective<S: Setting>(&self, subject: &str) -> Result<S> {
        match self.setting(Some(subject)).await? {
            Some(value) => Ok(value),
            None => self.global().await,
        }
    }

    /// Sets the global value (`None` subject) or the subject's; the last writer wins, as for
    /// any settings change.
    pub async fn set<S: Setting>(&self, subject: Option<&str>, value: S) -> Result<()> {
        let doc = SettingDoc::from([(S::FIELD.to_owned(), value.to_string())]);
        cas::update(self.state.as_ref(), &key_of::<S>(subject), |_: Option<SettingDoc>| {
            let doc = doc.clone();
            async move { Ok(Change::Write(doc, ())) }
        })
        .await
    }

    /// Removes the subject's value (or resets the global one); returns the value it had.
    pub async fn unset<S: Setting>(&self, subject: Option<&str>) -> Result<S> {
        let previous = match subject {
            None => self.global().await?,
            Some(subject) => {
                self.setting(Some(subject)).await?.ok_or_else(|| S::not_configured(subject))?
            }
        };
        self.forget::<S>(subject).await?;
        Ok(previous)
    }

    /// Deletes the stored value, if any.
    pub(crate) async fn forget<S: Setting>(&self, subject: Option<&str>) -> Result<()> {
        cas::update(self.state.as_ref(), &key_of::<S>(subject), |_: Option<SettingDoc>| async {
            Ok(Change::Delete(()))
        })
        .await
    }
}
