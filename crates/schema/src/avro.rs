//! Avro schemas: parsing with references, single-datum validation, resolution-based
//! compatibility.

use std::io::Read;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::reader::single_object::GenericSingleObjectReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value as AvroValue;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema as Avro;

use crate::{sorted_json, ResolvedReference, SchemaError, SchemaType, ValidationError};

pub(crate) struct AvroSchema {
    /// The schema with every referenced named type inlined where first used: self-contained.
    resolved: Avro,
    /// Decodes datums of `resolved`; its names are resolved once, here, not per payload.
    reader: GenericSingleObjectReader,
    canonical: String,
}

impl AvroSchema {
    pub(crate) fn parse(
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<AvroSchema, SchemaError> {
        apache_avro::util::max_allocation_bytes(crate::AVRO_MAX_ALLOCATION_BYTES);
        let invalid =
            |e: apache_avro::Error| SchemaError::invalid(SchemaType::Avro, error_text(&e));
        let (schema, named) = if references.is_empty() {
            (Avro::parse_str(text).map_err(invalid)?, Vec::new())
        } else {
            check_references(references)?;
            Avro::parse_str_with_list(text, references.iter().map(|r| r.text.as_str()))
                .map_err(invalid)?
        };
        let json = serde_json::to_value(&schema).map_err(invalid_json)?;
        let canonical = sorted_json(&json);
        let mut resolved = schema;
        resolved.denormalize(&named).map_err(invalid)?;
        let reader = GenericSingleObjectReader::builder()
            .schema(resolved.clone())
            // A datum in the registry's wire format has no single-object header.
            .header(Vec::new())
            .build()
            .map_err(invalid)?;
        Ok(AvroSchema { resolved, reader, canonical })
    }

    pub(crate) fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// The full name of the schema's top-level named type (record, enum or fixed), what the
    /// record name strategies name subjects after.
    pub(crate) fn record_name(&self) -> Option<String> {
        self.resolved.name().map(|name| name.fullname(None))
    }

    /// `null`, or a union with a `null` branch.
    pub(crate) fn accepts_null(&self) -> bool {
        match &self.resolved {
            Avro::Null => true,
            Avro::Union(union) => union.variants().contains(&Avro::Null),
            _ => false,
        }
    }

    pub(crate) fn validate(&self, payload: &[u8]) -> Result<(), ValidationError> {
        self.decode(payload).map(drop)
    }

    /// The parsed schema, self-contained: referenced named types are inlined where first used
    /// (later uses are `Schema::Ref`s to them).
    pub(crate) fn resolved(&self) -> &Avro {
        &self.resolved
    }

    /// Decodes one datum, checked as [`AvroSchema::validate`] checks it (one decode, not two).
    pub(crate) fn decode(&self, payload: &[u8]) -> Result<AvroValue, ValidationError> {
        let stack_base = stack_position();
        let mut input = Input::new(payload, stack_base);
        let decoded = self.reader.read_value(&mut input);
        if input.too_deep {
            return Err(too_deep());
        }
        let value = match decoded {
            Ok(value) if !input.ran_out => value,
            _ => return Err(self.locate_failure(payload, stack_base)),
        };
        if !input.rest.is_empty() {
            return Err(ValidationError::TrailingBytes {
                trailing: input.rest.len(),
                len: payload.len(),
            });
        }
        Ok(value)
    }

    /// Encodes a JSON document as one datum: objects become records (fields left out take their
    /// defaults), numbers are narrowed or widened to the field's type, and a union takes the
    /// first branch the value fits (plain JSON, not Avro's `{"type": value}` JSON encoding).
    pub(crate) fn encode_json(&self, json: &serde_json::Value) -> Result<Vec<u8>, ValidationError> {
        let failed = |e: apache_avro::Error| ValidationError::mismatch("", error_text(&e));
        let value = AvroValue::try_from(json.clone()).map_err(failed)?;
        let names = ResolvedSchema::new(&self.resolved).map_err(failed)?;
        let value = value.resolve_with_names(&self.resolved, names.get_names()).map_err(failed)?;
        let writer = GenericDatumWriter::builder(&self.resolved)
            .resolved_schemata(names)
            .build()
            .map_err(failed)?;
        writer.write_value_to_vec(value).map_err(failed)
    }

    /// Decodes one datum (checked as [`AvroSchema::validate`] does) into JSON: records and maps
    /// become objects, unions their branch's value, enums their symbol, bytes and fixed arrays
    /// of numbers.
    pub(crate) fn decode_json(&self, payload: &[u8]) -> Result<serde_json::Value, ValidationError> {
        let value = self.decode(payload)?;
        serde_json::Value::try_from(value)
            .map_err(|e| ValidationError::mismatch("", error_text(&e)))
    }

    /// Decodes again, a record field at a time, to name the field that fails (only on the error
    /// path: it resolves names per field).
    fn locate_failure(&self, payload: &[u8], stack_base: usize) -> ValidationError {
        let names = match ResolvedSchema::new(&self.resolved) {
            Ok(names) => names,
            Err(e) => return ValidationError::mismatch("", error_text(&e)),
        };
        let mut input = Input::new(payload, stack_base);
        let mut path = Vec::new();
        let reason = failing_field(&self.resolved, &names, &mut input, &mut path);
        if input.too_deep {
            return too_deep();
        }
        ValidationError::mismatch(path.join("."), reason)
    }

    /// Why data written with `writer` cannot be read with `self` (empty: it can).
    pub(crate) fn can_read(&self, writer: &AvroSchema) -> Vec<String> {
        match SchemaCompatibility::can_read(&writer.resolved, &self.resolved) {
            Ok(Compatibility::Full) => Vec::new(),
            Ok(Compatibility::Partial) => vec![
                "some of the writer's values cannot be read (an enum symbol or a union branch \
                 of the writer is missing from the reader)"
                    .to_owned(),
            ],
            Err(e) => vec![e
                .to_string()
                .trim_start_matches("Incompatible schemata! ")
                .trim_start_matches("Incompatible schema types! ")
                .to_owned()],
        }
    }
}

/// Every referenced schema must be a named type: the name is what the main schema uses.
fn check_references(references: &[ResolvedReference]) -> Result<(), SchemaError> {
    for reference in references {
        let named = serde_json::from_str::<serde_json::Value>(&reference.text)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|json| match json.get("name") {
                Some(serde_json::Value::String(_)) => Ok(()),
                _ => Err("not a named Avro type (record, enum or fixed)".to_owned()),
            });
        named.map_err(|reason| SchemaError::Reference { name: reference.name.clone(), reason })?;
    }
    Ok(())
}

/// Finds the field where decoding `schema` fails, pushing its name (and those of enclosing
/// records) onto `path`, and returns the reason.
fn failing_field<'s>(
    schema: &'s Avro,
    names: &ResolvedSchema<'s>,
    input: &mut Input<'_>,
    path: &mut Vec<String>,
) -> String {
    let record = match schema {
        Avro::Record(record) => record,
        Avro::Ref { name } => match names.get_names().get(name) {
            Some(Avro::Record(record)) => record,
            _ => return decode_reason(schema, names, input),
        },
        _ => return decode_reason(schema, names, input),
    };
    for field in &record.fields {
        let start = input.clone();
        if decode_one(&field.schema, names, input).is_err() {
            path.push(field.name.clone());
            *input = start;
            return failing_field(&field.schema, names, input, path);
        }
    }
    "does not decode".to_owned()
}

fn decode_reason<'s>(
    schema: &'s Avro,
    names: &ResolvedSchema<'s>,
    input: &mut Input<'_>,
) -> String {
    match decode_one(schema, names, input) {
        Err(reason) => reason,
        Ok(()) => "does not decode".to_owned(),
    }
}

fn decode_one<'s>(
    schema: &'s Avro,
    names: &ResolvedSchema<'s>,
    input: &mut Input<'_>,
) -> Result<(), String> {
    let reader = GenericDatumReader::builder(schema)
        .resolved_writer_schemata(names.clone())
        .build()
        .map_err(|e| error_text(&e))?;
    reader.read_value(input).map_err(|e| error_text(&e))?;
    if input.ran_out {
        return Err("the payload ends before the datum does".to_owned());
    }
    Ok(())
}

fn too_deep() -> ValidationError {
    ValidationError::mismatch(
        "",
        format!(
            "nested too deeply to decode (more than {} KiB of stack)",
            STACK_BUDGET_BYTES / 1024
        ),
    )
}

fn invalid_json(e: serde_json::Error) -> SchemaError {
    SchemaError::invalid(SchemaType::Avro, e)
}

/// The library's message, lowercased at the start as the house style wants.
fn error_text(e: &apache_avro::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The most stack one validation may use below `validate`'s own frame. `apache-avro` decodes
/// recursively, and a recursive schema (a linked list, a tree) lets a small payload nest as deep
/// as it has bytes: without a bound, a few kilobytes of garbage overflow the stack and abort the
/// process. Every level of nesting reads at least one byte (a union index or a block count)
/// before it descends, so [`Input`] checks the depth of the stack on every read and fails the
/// decode once this budget is spent. Callers need this much stack to spare (tokio's workers
/// have 2 MiB).
pub(crate) const STACK_BUDGET_BYTES: usize = 512 * 1024;

/// The payload being decoded. Remembers whether the decoder ever asked for bytes past the end:
/// `apache-avro` reads a truncated string or union as null instead of failing, so running out
/// must be noticed here. Also stops a decode that nests deeper than [`STACK_BUDGET_BYTES`].
#[derive(Clone)]
struct Input<'a> {
    rest: &'a [u8],
    ran_out: bool,
    too_deep: bool,
    /// The address of a local in `validate`: how deep the stack was when decoding started.
    stack_base: usize,
}

impl<'a> Input<'a> {
    fn new(payload: &'a [u8], stack_base: usize) -> Input<'a> {
        Input { rest: payload, ran_out: false, too_deep: false, stack_base }
    }
}

/// The current stack position: the address of a local, only ever compared, never dereferenced.
#[inline(never)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if stack_position().abs_diff(self.stack_base) > STACK_BUDGET_BYTES {
            self.too_deep = true;
            return Err(std::io::Error::other("nested too deeply"));
        }
        if !buf.is_empty() && self.rest.is_empty() {
            self.ran_out = true;
        }
        self.rest.read(buf)
    }
}
