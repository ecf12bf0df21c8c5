//! Compatibility levels and the check a new version of a subject must pass.
//!
//! What "can read" means for each format is in the crate documentation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Schema, SchemaError};

/// A subject's compatibility level, with Confluent's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// Any new schema is accepted.
    None,
    /// The new schema can read data written with the latest previous one (Confluent's default).
    #[default]
    Backward,
    /// The new schema can read data written with every previous one.
    BackwardTransitive,
    /// The latest previous schema can read data written with the new one.
    Forward,
    /// Every previous schema can read data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest previous schema.
    Full,
    /// Backward and forward against every previous schema.
    FullTransitive,
}

impl Level {
    /// Every level, in Confluent's order.
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    /// Confluent's name: `NONE`, `BACKWARD`, `BACKWARD_TRANSITIVE`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every previous version is checked, not only the latest.
    pub fn is_transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = SchemaError;

    /// Confluent's names, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| SchemaError::UnknownCompatibilityLevel(s.to_owned()))
    }
}

/// Checks `new` against the previous versions of a subject, `previous` oldest first, and returns
/// the reasons it is incompatible (empty: compatible). Non-transitive levels check only the
/// latest previous version. A schema of another type than a previous one is incompatible at
/// every level but `NONE`.
pub fn check(level: Level, new: &Schema, previous: &[&Schema]) -> Vec<String> {
    if level == Level::None {
        return Vec::new();
    }
    let against: &[&Schema] = if level.is_transitive() {
        previous
    } else {
        previous.last().map(std::slice::from_ref).unwrap_or_default()
    };
    let mut reasons = Vec::new();
    for (position, old) in against.iter().enumerate() {
        let which = if against.len() > 1 {
            format!("previous schema {} of {}", position + 1, against.len())
        } else {
            "the previous schema".to_owned()
        };
        if old.schema_type() != new.schema_type() {
            reasons.push(format!(
                "schema type changed from {} ({which}) to {}",
                old.schema_type(),
                new.schema_type()
            ));
            continue;
        }
        if level.checks_backward() {
            for reason in can_read(new, old) {
                reasons.push(format!(
                    "backward: the new schema cannot read data written with {which}: {reason}"
                ));
            }
        }
        if level.checks_forward() {
            for reason in can_read(old, new) {
                reasons.push(format!(
                    "forward: {which} cannot read data written with the new schema: {reason}"
                ));
            }
        }
    }
    reasons
}

/// Why data written with `writer` cannot be read with `reader` (empty: it can). Both have the
/// same type.
fn can_read(reader: &Schema, writer: &Schema) -> Vec<String> {
    use crate::Format;
    match (&reader.format, &writer.format) {
        (Format::Avro(reader), Format::Avro(writer)) => reader.can_read(writer),
        (Format::Json(reader), Format::Json(writer)) => reader.can_read(writer),
        (Format::Protobuf(reader), Format::Protobuf(writer)) => reader.can_read(writer),
        _ => vec!["schema types differ".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_confluents() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>().ok(), Some(level));
            assert_eq!(level.to_string(), level.as_str());
            assert_eq!(serde_json::to_string(&level).ok(), Some(format!("\"{}\"", level.as_str())));
        }
        assert_eq!("full_transitive".parse::<Level>().ok(), Some(Level::FullTransitive));
        assert_eq!(Level::default(), Level::Backward);
        assert!("SIDEWAYS".parse::<Level>().is_err());
    }
}
