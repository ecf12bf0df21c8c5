//! The one module that touches `skiff-schema`: parsing, canonical forms and compatibility.
//!
//! TEMPORARY stand-in until `skiff-schema` lands: same names and signatures, no real checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

impl FromStr for SchemaType {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "AVRO" => Ok(Self::Avro),
            "JSON" => Ok(Self::Json),
            "PROTOBUF" => Ok(Self::Protobuf),
            other => Err(format!("unknown schema type {other}")),
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Avro => "AVRO",
            Self::Json => "JSON",
            Self::Protobuf => "PROTOBUF",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReference {
    pub name: String,
    pub schema_type: SchemaType,
    pub text: String,
}

#[derive(Debug)]
pub struct Schema {
    canonical: String,
}

impl Schema {
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        _references: &[ResolvedReference],
    ) -> Result<Schema, String> {
        let canonical = match schema_type {
            SchemaType::Avro | SchemaType::Json => serde_json::from_str::<serde_json::Value>(text)
                .map_err(|error| error.to_string())?
                .to_string(),
            SchemaType::Protobuf => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        Ok(Schema { canonical })
    }

    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }
}

/// Parses a schema; the error is the parser's message.
pub(crate) fn parse(
    schema_type: SchemaType,
    text: &str,
    references: &[ResolvedReference],
) -> Result<Schema, String> {
    Schema::parse(schema_type, text, references).map_err(|error| error.to_string())
}

pub mod compatibility {
    use std::fmt;
    use std::str::FromStr;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Level {
        None,
        #[default]
        Backward,
        BackwardTransitive,
        Forward,
        ForwardTransitive,
        Full,
        FullTransitive,
    }

    impl FromStr for Level {
        type Err = String;
        fn from_str(text: &str) -> Result<Self, String> {
            Ok(match text {
                "NONE" => Self::None,
                "BACKWARD" => Self::Backward,
                "BACKWARD_TRANSITIVE" => Self::BackwardTransitive,
                "FORWARD" => Self::Forward,
                "FORWARD_TRANSITIVE" => Self::ForwardTransitive,
                "FULL" => Self::Full,
                "FULL_TRANSITIVE" => Self::FullTransitive,
                other => return Err(format!("unknown level {other}")),
            })
        }
    }

    impl fmt::Display for Level {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Self::None => "NONE",
                Self::Backward => "BACKWARD",
                Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
                Self::Forward => "FORWARD",
                Self::ForwardTransitive => "FORWARD_TRANSITIVE",
                Self::Full => "FULL",
                Self::FullTransitive => "FULL_TRANSITIVE",
            })
        }
    }

    pub fn check(_level: Level, _new: &super::Schema, _previous: &[&super::Schema]) -> Vec<String> {
        Vec::new()
    }
}
