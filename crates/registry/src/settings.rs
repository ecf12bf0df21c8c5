//! Compatibility levels and modes, global and per subject.

use std::str::FromStr;

use crate::cas::{self, Change};
use crate::error::{RegistryError, Result};
use crate::format::compatibility::Level;
use crate::registry::Registry;
use crate::stored::{self, decode, ConfigDoc, Mode, ModeDoc};

/// Parses a compatibility level name (case-insensitive); 42203 otherwise.
pub fn parse_level(text: &str) -> Result<Level> {
    Level::from_str(&text.to_ascii_uppercase())
        .map_err(|_| RegistryError::InvalidCompatibilityLevel(text.to_owned()))
}

/// Parses a mode name (case-insensitive); 42204 otherwise.
pub fn parse_mode(text: &str) -> Result<Mode> {
    Mode::from_str(text).map_err(|_| RegistryError::InvalidMode(text.to_owned()))
}

impl Registry {
    async fn read_level(&self, key: &str) -> Result<Option<Level>> {
        let Some(value) = self.state.get(key).await? else { return Ok(None) };
        let doc: ConfigDoc = decode(key, &value.value)?;
        Ok(Some(parse_level(&doc.compatibility)?))
    }

    async fn read_mode(&self, key: &str) -> Result<Option<Mode>> {
        let Some(value) = self.state.get(key).await? else { return Ok(None) };
        let doc: ModeDoc = decode(key, &value.value)?;
        Ok(Some(parse_mode(&doc.mode)?))
    }

    /// Replaces the setting at `key` whatever it was: the last writer wins, as for any
    /// settings change.
    async fn write_setting<T>(&self, key: &str, value: T) -> Result<()>
    where
        T: Clone + serde::Serialize + for<'de> serde::Deserialize<'de>,
    {
        cas::update(self.state.as_ref(), key, |_: Option<T>| {
            let value = value.clone();
            async move { Ok(Change::Write(value, ())) }
        })
        .await
    }

    async fn delete_setting<T>(&self, key: &str) -> Result<()>
    where
        T: serde::Serialize + for<'de> serde::Deserialize<'de>,
    {
        cas::update(self.state.as_ref(), key, |_: Option<T>| async { Ok(Change::Delete(())) }).await
    }

    /// The global compatibility level (BACKWARD unless set).
    pub async fn global_level(&self) -> Result<Level> {
        Ok(self.read_level(stored::GLOBAL_CONFIG).await?.unwrap_or_default())
    }

    /// The subject's own level, if set.
    pub async fn subject_level(&self, subject: &str) -> Result<Option<Level>> {
        self.read_level(&stored::subject_config_key(subject)).await
    }

    /// The level a registration under `subject` is checked with.
    pub async fn effective_level(&self, subject: &str) -> Result<Level> {
        match self.subject_level(subject).await? {
            Some(level) => Ok(level),
            None => self.global_level().await,
        }
    }

    /// Sets the global level (`None` subject) or the subject's.
    pub async fn set_level(&self, subject: Option<&str>, level: Level) -> Result<()> {
        let key =
            subject.map_or_else(|| stored::GLOBAL_CONFIG.to_owned(), stored::subject_config_key);
        self.write_setting(&key, ConfigDoc { compatibility: level.to_string() }).await
    }

    /// Removes the subject's level (or resets the global one); returns the level it had.
    pub async fn delete_level(&self, subject: Option<&str>) -> Result<Level> {
        let previous = match subject {
            None => self.global_level().await?,
            Some(subject) => self
                .subject_level(subject)
                .await?
                .ok_or_else(|| RegistryError::SubjectConfigNotFound(subject.to_owned()))?,
        };
        let key =
            subject.map_or_else(|| stored::GLOBAL_CONFIG.to_owned(), stored::subject_config_key);
        self.delete_setting::<ConfigDoc>(&key).await?;
        Ok(previous)
    }

    /// The global mode (READWRITE unless set).
    pub async fn global_mode(&self) -> Result<Mode> {
        Ok(self.read_mode(stored::GLOBAL_MODE).await?.unwrap_or_default())
    }

    /// The subject's own mode, if set.
    pub async fn subject_mode(&self, subject: &str) -> Result<Option<Mode>> {
        self.read_mode(&stored::subject_mode_key(subject)).await
    }

    /// The mode writes to `subject` are governed by.
    pub async fn effective_mode(&self, subject: &str) -> Result<Mode> {
        match self.subject_mode(subject).await? {
            Some(mode) => Ok(mode),
            None => self.global_mode().await,
        }
    }

    /// Sets the global mode (`None` subject) or the subject's.
    pub async fn set_mode(&self, subject: Option<&str>, mode: Mode) -> Result<()> {
        let key = subject.map_or_else(|| stored::GLOBAL_MODE.to_owned(), stored::subject_mode_key);
        self.write_setting(&key, ModeDoc { mode: mode.to_string() }).await
    }

    /// Removes the subject's mode (or resets the global one); returns the mode it had.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Mode> {
        let previous = match subject {
            None => self.global_mode().await?,
            Some(subject) => self
                .subject_mode(subject)
                .await?
                .ok_or_else(|| RegistryError::SubjectModeNotFound(subject.to_owned()))?,
        };
        let key = subject.map_or_else(|| stored::GLOBAL_MODE.to_owned(), stored::subject_mode_key);
        self.delete_setting::<ModeDoc>(&key).await?;
        Ok(previous)
    }
}
