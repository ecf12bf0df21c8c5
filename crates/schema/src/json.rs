//! JSON Schema: offline `$ref` resolution through the references, validation with instance
//! paths, a structural compatibility subset.

use std::collections::BTreeSet;

use jsonschema::paths::LocationSegment;
use jsonschema::{Draft, Registry, Validator};
use serde_json::{Map, Value};

use crate::{sorted_json, ResolvedReference, SchemaError, SchemaType, ValidationError};

/// The base URI of a schema without `$id`, as `jsonschema` resolves relative references.
const DEFAULT_BASE: &str = "json-schema:///";

pub(crate) struct JsonSchema {
    value: Value,
    validator: Validator,
}

impl JsonSchema {
    pub(crate) fn parse(
        text: &str,
        references: &[ResolvedReference],
    ) -> Result<JsonSchema, SchemaError> {
        let invalid = |reason: String| SchemaError::invalid(SchemaType::Json, reason);
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        if !value.is_object() && !value.is_boolean() {
            return Err(invalid("a JSON Schema must be an object or a boolean".to_owned()));
        }
        let mut options = jsonschema::options().offline();
        let declares_draft = value.get("$schema").is_some();
        if !declares_draft {
            // Confluent's default when a schema names no draft.
            options = options.with_draft(Draft::Draft7);
        }
        let registry;
        if !references.is_empty() {
            registry = reference_registry(&value, references, declares_draft)?;
            options = options.with_registry(&registry);
        }
        let validator = options.build(&value).map_err(|e| invalid(error_text(&e)))?;
        Ok(JsonSchema { value, validator })
    }

    pub(crate) fn canonical(&self) -> String {
        sorted_json(&self.value)
    }

    /// The schema document as parsed.
    pub(crate) fn value(&self) -> &Value {
        &self.value
    }

    /// The schema's `title`: what Confluent's record name strategies name a JSON Schema
    /// subject after.
    pub(crate) fn record_name(&self) -> Option<String> {
        self.value.get("title").and_then(Value::as_str).map(str::to_owned)
    }

    pub(crate) fn validate(&self, payload: &[u8]) -> Result<(), ValidationError> {
        let text = std::str::from_utf8(payload)
            .map_err(|e| ValidationError::NotJson(format!("not UTF-8: {e}")))?;
        let instance: Value =
            serde_json::from_str(text).map_err(|e| ValidationError::NotJson(e.to_string()))?;
        self.validator
            .validate(&instance)
            .map_err(|e| ValidationError::mismatch(instance_path(&e), e.masked().to_string()))
    }

    /// The document's bytes, once it is valid under the schema.
    pub(crate) fn encode_json(&self, json: &serde_json::Value) -> Result<Vec<u8>, ValidationError> {
        let payload =
            serde_json::to_vec(json).map_err(|e| ValidationError::NotJson(e.to_string()))?;
        self.validate(&payload)?;
        Ok(payload)
    }

    /// The payload as a JSON document, once it is valid under the schema.
    pub(crate) fn decode_json(&self, payload: &[u8]) -> Result<serde_json::Value, ValidationError> {
        self.validate(payload)?;
        serde_json::from_slice(payload).map_err(|e| ValidationError::NotJson(e.to_string()))
    }

    /// Why data written with `writer` cannot be read with `self` (empty: it can). See the crate
    /// documentation for what is compared.
    pub(crate) fn can_read(&self, writer: &JsonSchema) -> Vec<String> {
        let mut reasons = Vec::new();
        compare(&self.value, &writer.value, "", &mut reasons);
        reasons
    }
}

/// Registers every reference under its name: as given when it is an absolute URI, else
/// relative to the default base and to the main schema's `$id`.
fn reference_registry(
    main: &Value,
    references: &[ResolvedReference],
    declares_draft: bool,
) -> Result<Registry<'static>, SchemaError> {
    let main_base = main
        .get("$id")
        .and_then(Value::as_str)
        .filter(|id| id.contains("://"))
        .and_then(|id| id.rfind('/').map(|slash| id[..=slash].to_owned()));
    let mut builder = Registry::new();
    if !declares_draft {
        builder = builder.draft(Draft::Draft7);
    }
    for reference in references {
        let failed =
            |reason: String| SchemaError::Reference { name: reference.name.clone(), reason };
        let value: Value =
            serde_json::from_str(&reference.text).map_err(|e| failed(format!("not JSON: {e}")))?;
        let name = reference.name.trim_start_matches("./");
        let mut uris = Vec::new();
        if name.contains(':') {
            uris.push(name.to_owned());
        } else {
            uris.push(format!("{DEFAULT_BASE}{name}"));
            if let Some(base) = &main_base {
                uris.push(format!("{base}{name}"));
            }
        }
        for uri in uris {
            builder = builder.add(uri, value.clone()).map_err(|e| failed(e.to_string()))?;
        }
    }
    builder
        .prepare()
        .map_err(|e| SchemaError::invalid(SchemaType::Json, format!("references: {e}")))
}

fn error_text(e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().to_string();
    if path.is_empty() {
        e.to_string()
    } else {
        format!("at `{path}`: {e}")
    }
}

/// The instance path as `address.zip` or `items[2].name`.
fn instance_path(e: &jsonschema::ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in e.instance_path().iter() {
        match segment {
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
            LocationSegment::Index(index) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

/// Pushes onto `out` why an instance valid under `writer` may be invalid under `reader`, at
/// `path`.
fn compare(reader: &Value, writer: &Value, path: &str, out: &mut Vec<String>) {
    let at = if path.is_empty() { "the root".to_owned() } else { format!("`{path}`") };
    let empty = Map::new();
    let (reader, writer) = match (reader, writer) {
        (Value::Bool(true), _) => return,
        (Value::Bool(false), Value::Bool(false)) => return,
        (Value::Bool(false), _) => {
            out.push(format!("{at}: the reader's schema accepts nothing"));
            return;
        }
        (Value::Object(reader), Value::Bool(_)) => (reader, &empty),
        (Value::Object(reader), Value::Object(writer)) => (reader, writer),
        _ => return,
    };

    let reader_ref = reader.get("$ref");
    let writer_ref = writer.get("$ref");
    if reader_ref.is_some() || writer_ref.is_some() {
        if reader_ref != writer_ref {
            out.push(format!(
                "{at}: `$ref` changed from {} to {}",
                show(writer_ref),
                show(reader_ref)
            ));
        }
        return;
    }

    if let Some(reader_types) = types(reader) {
        match types(writer) {
            None => out.push(format!("{at}: type narrowed from any to {}", join(&reader_types))),
            Some(writer_types) => {
                let readable = writer_types.iter().all(|t| {
                    reader_types.contains(t) || (t == "integer" && reader_types.contains("number"))
                });
                if !readable {
                    out.push(format!(
                        "{at}: type changed from {} to {}",
                        join(&writer_types),
                        join(&reader_types)
                    ));
                }
            }
        }
    }

    if let Some(reader_enum) = reader.get("enum").and_then(Value::as_array) {
        match writer.get("enum").and_then(Value::as_array) {
            None => out.push(format!("{at}: an `enum` was added")),
            Some(writer_enum) => {
                for value in writer_enum.iter().filter(|v| !reader_enum.contains(v)) {
                    out.push(format!("{at}: enum value {value} is missing"));
                }
            }
        }
    }

    let writer_required = names(writer.get("required"));
    for property in names(reader.get("required")).difference(&writer_required) {
        out.push(format!("{at}: property `{property}` became required"));
    }

    let reader_properties = reader.get("properties").and_then(Value::as_object);
    let writer_properties = writer.get("properties").and_then(Value::as_object);
    let reader_additional = reader.get("additionalProperties");
    let writer_closed = writer.get("additionalProperties") == Some(&Value::Bool(false));
    if reader_additional == Some(&Value::Bool(false)) && !writer_closed {
        out.push(format!("{at}: the content model was closed (`additionalProperties: false`)"));
    }
    for (property, writer_schema) in writer_properties.into_iter().flatten() {
        let child = child_path(path, property);
        match reader_properties.and_then(|p| p.get(property)) {
            Some(reader_schema) => compare(reader_schema, writer_schema, &child, out),
            None => match reader_additional {
                Some(Value::Bool(false)) => out.push(format!(
                    "{at}: property `{property}` was removed from a closed content model"
                )),
                Some(additional @ Value::Object(_)) => {
                    compare(additional, writer_schema, &child, out)
                }
                _ => {}
            },
        }
    }

    if let (Some(reader_items @ Value::Object(_)), Some(writer_items @ Value::Object(_))) =
        (reader.get("items"), writer.get("items"))
    {
        compare(reader_items, writer_items, &format!("{path}[]"), out);
    }
}

fn child_path(path: &str, property: &str) -> String {
    if path.is_empty() {
        property.to_owned()
    } else {
        format!("{path}.{property}")
    }
}

/// The `type`s a schema allows, `None` when it does not say.
fn types(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(single) => Some(BTreeSet::from([single.clone()])),
        Value::Array(many) => {
            Some(many.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        }
        _ => None,
    }
}

fn names(list: Option<&Value>) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn join(types: &BTreeSet<String>) -> String {
    types.iter().cloned().collect::<Vec<_>>().join("|")
}

fn show(reference: Option<&Value>) -> String {
    reference.map_or_else(|| "none".to_owned(), Value::to_string)
}
