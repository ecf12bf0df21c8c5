//! `skiff schema`: register, list, show, check and delete schemas in a Schema Registry (the one
//! `skiff broker --schema-registry-listen` serves, or Confluent's) over its REST API.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand};
use skiff_schema::{Reference, SchemaType};

use crate::registry_client::{RegistryClient, DEFAULT_REGISTRY};

#[derive(Args)]
pub(crate) struct SchemaArgs {
    /// The Schema Registry's base URL.
    #[arg(long, env = "SKIFF_SCHEMA_REGISTRY", default_value = DEFAULT_REGISTRY, global = true)]
    registry: String,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand)]
enum SchemaCommand {
    /// Register a schema file under a subject; prints its id.
    Register(SchemaFileArgs),
    /// List subjects, one per line.
    List {
        /// Include soft-deleted subjects.
        #[arg(long, value_parser = BoolishValueParser::new())]
        deleted: bool,
    },
    /// Print a version of a subject's schema (its subject, version, id and type go to stderr).
    Get {
        /// Subject to read, e.g. orders-value.
        subject: String,
        /// Version number, or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
        /// Print the registry's whole answer (subject, version, id, schemaType, references,
        /// schema) as JSON instead of the schema text.
        #[arg(long, value_parser = BoolishValueParser::new())]
        json: bool,
    },
    /// Delete a subject, or one version of it; prints the versions deleted.
    Delete {
        /// Subject to delete from.
        subject: String,
        /// Delete only this version (a number, or `latest`).
        #[arg(long)]
        version: Option<String>,
        /// Remove for good (after a soft delete, which this does first if needed).
        #[arg(long, value_parser = BoolishValueParser::new())]
        permanent: bool,
    },
    /// Check whether a schema file may become the subject's next version; exits non-zero if not.
    Compat(SchemaFileArgs),
}

#[derive(Args)]
struct SchemaFileArgs {
    /// Subject, e.g. orders-value for the values of topic orders.
    subject: String,
    /// The schema file (.avsc, .json, .proto, ...).
    file: PathBuf,
    /// Schema type; by default PROTOBUF for .proto files, JSON for .json files, else AVRO.
    #[arg(long = "type", value_parser = parse_schema_type)]
    schema_type: Option<SchemaType>,
    /// A reference as NAME=SUBJECT:VERSION (an Avro full name, a Protobuf import path or a JSON
    /// `$ref`); repeat for several. VERSION may be `latest`.
    #[arg(long = "reference", value_parser = parse_reference)]
    references: Vec<Reference>,
}

pub(crate) async fn run(args: SchemaArgs) -> anyhow::Result<()> {
    let registry = RegistryClient::new(&args.registry)?;
    match args.command {
        SchemaCommand::Register(file_args) => register(&registry, file_args).await,
        SchemaCommand::List { deleted } => {
            for subject in registry.subjects(deleted).await? {
                println!("{subject}");
            }
            Ok(())
        }
        SchemaCommand::Get { subject, version, json } => {
            get(&registry, &subject, &version, json).await
        }
        SchemaCommand::Delete { subject, version, permanent } => {
            let deleted = registry.delete(&subject, version.as_deref(), permanent).await?;
            for version in &deleted {
                println!("{version}");
            }
            let how = if permanent { "permanently" } else { "soft" };
            eprintln!("deleted {} version(s) of {subject} ({how})", deleted.len());
            Ok(())
        }
        SchemaCommand::Compat(file_args) => compat(&registry, file_args).await,
    }
}

async fn register(registry: &RegistryClient, args: SchemaFileArgs) -> anyhow::Result<()> {
    let (schema_type, text) = read_schema(&args)?;
    let id = registry.register(&args.subject, schema_type, &text, &args.references).await?;
    println!("{id}");
    eprintln!("registered {} under {} with id {id}", args.file.display(), args.subject);
    Ok(())
}

async fn get(
    registry: &RegistryClient,
    subject: &str,
    version: &str,
    json: bool,
) -> anyhow::Result<()> {
    let found = registry.version(subject, version).await?;
    if json {
        let document = serde_json::json!({
            "subject": found.subject,
            "version": found.version,
            "id": found.id,
            "schemaType": found.schema_type,
            "references": found.references,
            "schema": found.schema,
        });
        println!("{document}");
        return Ok(());
    }
    eprintln!(
        "subject {} version {} id {} type {}",
        found.subject, found.version, found.id, found.schema_type
    );
    println!("{}", found.schema);
    Ok(())
}

async fn compat(registry: &RegistryClient, args: SchemaFileArgs) -> anyhow::Result<()> {
    let (schema_type, text) = read_schema(&args)?;
    let reasons =
        registry.incompatibilities(&args.subject, schema_type, &text, &args.references).await?;
    if reasons.is_empty() {
        println!("compatible");
        return Ok(());
    }
    bail!("{} is not compatible with {}: {}", args.file.display(), args.subject, reasons.join("; "))
}

fn read_schema(args: &SchemaFileArgs) -> anyhow::Result<(SchemaType, String)> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    Ok((args.schema_type.unwrap_or_else(|| type_of_file(&args.file)), text))
}

/// The type a file's extension suggests: `.proto` Protobuf, `.json` JSON Schema, else Avro
/// (Confluent's default, and `.avsc`).
fn type_of_file(path: &Path) -> SchemaType {
    match path.extension().and_then(|extension| extension.to_str()) {
        Some(extension) if extension.eq_ignore_ascii_case("proto") => SchemaType::Protobuf,
        Some(extension) if extension.eq_ignore_ascii_case("json") => SchemaType::Json,
        _ => SchemaType::Avro,
    }
}

fn parse_schema_type(text: &str) -> Result<SchemaType, String> {
    text.parse().map_err(|error: skiff_schema::SchemaError| error.to_string())
}

/// `NAME=SUBJECT:VERSION`, split at the first `=` and the last `:` (names and subjects may
/// contain colons; versions never do). `latest` is the registry's `-1`.
fn parse_reference(text: &str) -> Result<Reference, String> {
    let usage = || format!("expected NAME=SUBJECT:VERSION, got {text:?}");
    let (name, target) = text.split_once('=').ok_or_else(usage)?;
    let (subject, version) = target.rsplit_once(':').ok_or_else(usage)?;
    if name.is_empty() || subject.is_empty() {
        return Err(usage());
    }
    let version = match version {
        "latest" => -1,
        number => number.parse::<i32>().ok().filter(|&version| version >= 1).ok_or_else(|| {
            format!("version {number:?} of reference {name:?} is not a number >= 1 or latest")
        })?,
    };
    Ok(Reference { name: name.to_owned(), subject: subject.to_owned(), version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_first_equals_and_the_last_colon() {
        let reference = parse_reference("com.acme.Address=ns:address:2").ok();
        assert_eq!(
            reference,
            Some(Reference {
                name: "com.acme.Address".into(),
                subject: "ns:address".into(),
                version: 2
            })
        );
        assert_eq!(parse_reference("a.proto=a:latest").ok().map(|r| r.version), Some(-1));
        for bad in ["name", "name=subject", "=s:1", "n=:1", "n=s:0", "n=s:x"] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_extension_suggests_the_type() {
        assert_eq!(type_of_file(Path::new("order.proto")), SchemaType::Protobuf);
        assert_eq!(type_of_file(Path::new("order.JSON")), SchemaType::Json);
        assert_eq!(type_of_file(Path::new("order.avsc")), SchemaType::Avro);
        assert_eq!(type_of_file(Path::new("order")), SchemaType::Avro);
        assert_eq!(parse_schema_type("protobuf"), Ok(SchemaType::Protobuf));
        assert!(parse_schema_type("xml").is_err());
    }
}
