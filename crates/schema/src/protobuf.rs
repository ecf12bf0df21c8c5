//! Protobuf: compile .proto text with imports from memory, decode payloads as the message the
//! message indexes select, compare descriptors for compatibility.
//!
//! A schema (and each referenced file) is either .proto source or, as confluent-kafka's
//! `ProtobufSerializer` registers it, a base64-encoded serialized `FileDescriptorProto`; both
//! compile to the same descriptor, so both give the same canonical form and schema id.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use miette::Diagnostic;
use prost::Message as _;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, FileDescriptor, Kind,
    MessageDescriptor, ReflectMessage, Value,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::{ResolvedReference, SchemaError, SchemaType, ValidationError};

/// The name the main schema is compiled under; error messages show it.
const MAIN_FILE: &str = "schema.proto";
/// Its name when a reference is imported as `schema.proto` itself.
const MAIN_FILE_FALLBACK: &str = "skiff-registered-schema.proto";

pub(crate) struct ProtobufSchema {
    pool: DescriptorPool,
    file: FileDescriptor,
}

impl ProtobufSchema {
    pub(crate) fn parse(
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<ProtobufSchema, SchemaError> {
        let main = if references.iter().any(|r| r.name == MAIN_FILE) {
            MAIN_FILE_FALLBACK
        } else {
            MAIN_FILE
        };
        let mut sources: HashMap<String, String> =
            references.iter().map(|r| (r.name.clone(), r.text.clone())).collect();
        sources.insert(main.to_owned(), text.to_owned());
        let mut resolver = ChainFileResolver::new();
        resolver.add(Sources(sources.clone()));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler.open_file(main).map_err(|e| compile_error(&e, &sources))?;
        let pool = compiler.descriptor_pool();
        let file = pool.get_file_by_name(main).ok_or_else(|| {
            SchemaError::invalid(SchemaType::Protobuf, "the compiled file is missing")
        })?;
        Ok(ProtobufSchema { pool, file })
    }

    pub(crate) fn canonical(&self) -> String {
        let mut proto = self.file.file_descriptor_proto().clone();
        proto.name = Some(MAIN_FILE.to_owned());
        proto.source_code_info = None;
        let bytes = proto.encode_to_vec();
        let mut hex = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }

    /// The compiled file as Confluent's `format=serialized` answers it: a base64-encoded
    /// serialized `FileDescriptorProto` (no source positions), what confluent-kafka's
    /// `ProtobufDeserializer` asks for.
    pub(crate) fn serialized(&self) -> String {
        let mut proto = self.file.file_descriptor_proto().clone();
        proto.source_code_info = None;
        BASE64.encode(proto.encode_to_vec())
    }

    /// The full name of the message type the indexes select: the subject of the record name
    /// strategies.
    pub(crate) fn record_name(&self, message_indexes: &[i32]) -> Result<String, ValidationError> {
        Ok(self.message(message_indexes)?.full_name().to_owned())
    }

    pub(crate) fn validate(
        &self,
        payload: &[u8],
        message_indexes: &[i32],
    ) -> Result<(), ValidationError> {
        let descriptor = self.message(message_indexes)?;
        let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|e| {
            ValidationError::mismatch("", format!("not a valid `{}`: {e}", descriptor.full_name()))
        })?;
        let mut path = String::new();
        match unknown_field(&message, &mut path) {
            None => Ok(()),
            Some(reason) => Err(ValidationError::mismatch(path, reason)),
        }
    }

    /// Encodes a JSON document (protobuf's canonical JSON mapping: field names in lowerCamelCase
    /// or as declared, 64-bit integers as numbers or strings, enums by name) as the message the
    /// indexes select. Unknown fields are refused.
    pub(crate) fn encode_json(
        &self,
        json: &serde_json::Value,
        message_indexes: &[i32],
    ) -> Result<Vec<u8>, ValidationError> {
        let descriptor = self.message(message_indexes)?;
        let message =
            DynamicMessage::deserialize(descriptor.clone(), json.clone()).map_err(|e| {
                ValidationError::mismatch(
                    "",
                    format!("not a valid `{}`: {e}", descriptor.full_name()),
                )
            })?;
        Ok(message.encode_to_vec())
    }

    /// Decodes the message the indexes select (checked as [`ProtobufSchema::validate`] does)
    /// into protobuf's canonical JSON mapping.
    pub(crate) fn decode_json(
        &self,
        payload: &[u8],
        message_indexes: &[i32],
    ) -> Result<serde_json::Value, ValidationError> {
        self.validate(payload, message_indexes)?;
        let descriptor = self.message(message_indexes)?;
        let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|e| {
            ValidationError::mismatch("", format!("not a valid `{}`: {e}", descriptor.full_name()))
        })?;
        serde_json::to_value(&message).map_err(|e| ValidationError::mismatch("", e))
    }

    /// The message type Confluent's message indexes select: `[]` and `[0]` the first message of
    /// the file, then one index per nesting level (map entries do not count).
    pub(crate) fn message(&self, indexes: &[i32]) -> Result<MessageDescriptor, ValidationError> {
        let indexes = if indexes.is_empty() { &[0][..] } else { indexes };
        let unknown =
            |reason: String| ValidationError::UnknownMessage { indexes: indexes.to_vec(), reason };
        let mut selected: Option<MessageDescriptor> = None;
        for (depth, &index) in indexes.iter().enumerate() {
            let candidates: Vec<MessageDescriptor> = match &selected {
                None => self.file.messages().collect(),
                Some(parent) => parent.child_messages().filter(|m| !m.is_map_entry()).collect(),
            };
            let found = usize::try_from(index).ok().and_then(|i| candidates.get(i).cloned());
            let Some(found) = found else {
                let within = selected
                    .as_ref()
                    .map_or_else(|| "the file".to_owned(), |m| format!("`{}`", m.full_name()));
                return Err(unknown(format!(
                    "index {index} at depth {depth}: {within} has {} message types",
                    candidates.len()
                )));
            };
            selected = Some(found);
        }
        selected.ok_or_else(|| unknown("no index".to_owned()))
    }

    /// Why data written with `writer` cannot be read with `self` (empty: it can). See the crate
    /// documentation for what is compared.
    pub(crate) fn can_read(&self, writer: &ProtobufSchema) -> Vec<String> {
        let mut reasons = Vec::new();
        for written in all_messages(&writer.file) {
            let Some(read) = self.pool.get_message_by_name(written.full_name()) else {
                if !written.is_map_entry() {
                    reasons.push(format!("message `{}` is missing", written.full_name()));
                }
                continue;
            };
            for writer_field in written.fields() {
                if let Some(reader_field) = read.get_field(writer_field.number()) {
                    if let Some(change) = field_change(&reader_field, &writer_field) {
                        reasons.push(format!(
                            "field `{}` (number {}): {change}",
                            writer_field.full_name(),
                            writer_field.number()
                        ));
                    }
                }
            }
            for reader_field in read.fields() {
                if reader_field.cardinality() == Cardinality::Required
                    && written.get_field(reader_field.number()).is_none()
                {
                    reasons.push(format!(
                        "required field `{}` (number {}) is missing from the writer's message",
                        reader_field.full_name(),
                        reader_field.number()
                    ));
                }
            }
        }
        reasons
    }
}

/// Imported files by import path, from the references.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(text) => match serialized_descriptor(text) {
                Some(mut proto) => {
                    // Compiled under the name it is imported by, whatever name it was built with.
                    proto.name = Some(name.to_owned());
                    Ok(File::from_file_descriptor_proto(proto))
                }
                None => File::from_source(name, text),
            },
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The `FileDescriptorProto` a schema text encodes in base64, if it is one. Source text never
/// is: any .proto file with a declaration holds whitespace or characters base64 lacks.
fn serialized_descriptor(text: &str) -> Option<FileDescriptorProto> {
    let text = text.trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let bytes = BASE64.decode(text).ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// The compiler's message with the file, line and column it points at.
fn compile_error(e: &protox::Error, sources: &HashMap<String, String>) -> SchemaError {
    let file = e.file().unwrap_or(MAIN_FILE);
    let position = e
        .labels()
        .and_then(|mut labels| labels.next())
        .and_then(|label| {
            let source = sources.get(file)?;
            let offset = label.offset().min(source.len());
            let before = source.get(..offset)?;
            let line = before.matches('\n').count() + 1;
            let column = before.rfind('\n').map_or(offset, |n| offset - n - 1) + 1;
            Some(format!(":{line}:{column}"))
        })
        .unwrap_or_default();
    SchemaError::invalid(SchemaType::Protobuf, format!("{file}{position}: {e}"))
}

/// The first field of `message`, at any depth, that its type does not declare; `path` is set
/// to where it was found.
fn unknown_field(message: &DynamicMessage, path: &mut String) -> Option<String> {
    if let Some(field) = message.unknown_fields().next() {
        return Some(format!(
            "unknown field number {} (not declared in `{}`)",
            field.number(),
            message.descriptor().full_name()
        ));
    }
    for (field, value) in message.fields() {
        let base = if path.is_empty() {
            field.name().to_owned()
        } else {
            format!("{path}.{}", field.name())
        };
        let check = |nested: &DynamicMessage, at: String| {
            let mut nested_path = at;
            let found = unknown_field(nested, &mut nested_path);
            found.map(|reason| (nested_path, reason))
        };
        let found = match value {
            Value::Message(nested) => check(nested, base.clone()),
            Value::List(items) => items.iter().enumerate().find_map(|(i, item)| match item {
                Value::Message(nested) => check(nested, format!("{base}[{i}]")),
                _ => None,
            }),
            Value::Map(entries) => entries.iter().find_map(|(key, item)| match item {
                Value::Message(nested) => check(nested, format!("{base}[{key:?}]")),
                _ => None,
            }),
            _ => None,
        };
        if let Some((at, reason)) = found {
            *path = at;
            return Some(reason);
        }
    }
    None
}

fn all_messages(file: &FileDescriptor) -> Vec<MessageDescriptor> {
    let mut out = Vec::new();
    let mut pending: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(message) = pending.pop() {
        pending.extend(message.child_messages());
        out.push(message);
    }
    out
}

/// How a field's type changed in a way the reader cannot decode, if it did.
fn field_change(reader: &FieldDescriptor, writer: &FieldDescriptor) -> Option<String> {
    if reader.is_map() != writer.is_map() {
        return Some("changed into or out of a map".to_owned());
    }
    if reader.is_list() != writer.is_list() {
        return Some("changed between singular and repeated".to_owned());
    }
    let (reader_kind, writer_kind) = (reader.kind(), writer.kind());
    let compatible = match (&reader_kind, &writer_kind) {
        (Kind::Message(r), Kind::Message(w)) => r.full_name() == w.full_name(),
        (Kind::Enum(r), Kind::Enum(w)) => r.full_name() == w.full_name(),
        (r, w) => wire_group(r).is_some() && wire_group(r) == wire_group(w),
    };
    if compatible {
        None
    } else {
        Some(format!(
            "type changed from {} to {}",
            kind_name(&writer_kind),
            kind_name(&reader_kind)
        ))
    }
}

/// Scalar kinds that decode each other's encoding, per the Protobuf language guide.
fn wire_group(kind: &Kind) -> Option<u8> {
    match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => Some(1),
        Kind::Sint32 | Kind::Sint64 => Some(2),
        Kind::Fixed32 | Kind::Sfixed32 => Some(3),
        Kind::Fixed64 | Kind::Sfixed64 => Some(4),
        Kind::String | Kind::Bytes => Some(5),
        Kind::Double => Some(6),
        Kind::Float => Some(7),
        Kind::Message(_) | Kind::Enum(_) => None,
    }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".to_owned(),
        Kind::Float => "float".to_owned(),
        Kind::Int32 => "int32".to_owned(),
        Kind::Int64 => "int64".to_owned(),
        Kind::Uint32 => "uint32".to_owned(),
        Kind::Uint64 => "uint64".to_owned(),
        Kind::Sint32 => "sint32".to_owned(),
        Kind::Sint64 => "sint64".to_owned(),
        Kind::Fixed32 => "fixed32".to_owned(),
        Kind::Fixed64 => "fixed64".to_owned(),
        Kind::Sfixed32 => "sfixed32".to_owned(),
        Kind::Sfixed64 => "sfixed64".to_owned(),
        Kind::Bool => "bool".to_owned(),
        Kind::String => "string".to_owned(),
        Kind::Bytes => "bytes".to_owned(),
        Kind::Message(message) => format!("`{}`", message.full_name()),
        Kind::Enum(enumeration) => format!("enum `{}`", enumeration.full_name()),
    }
}
