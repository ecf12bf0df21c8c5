//! JSON Schema: the schema document (from `skiff-schema`) compiled into a column tree, and
//! `serde_json` values into the columns.
//!
//! JSON Schema describes what is valid, not a layout, so only the structural keywords are
//! read: `type`, `properties`, `required`, `items`, `additionalProperties`, `format`, `enum`,
//! local `$ref`s (`#/...`), and `anyOf`/`oneOf` of `null` and one schema. Anything else, and
//! values that may take several types, become a Utf8 column holding the value as JSON text.

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use chrono::{DateTime, NaiveDate};
use serde_json::{Map, Value};
use skiff_schema::Schema;

use crate::columns::Column;
use crate::{join, list_of, map_of, single_column, SinkError};

/// How deep local `$ref`s may chain: deeper is taken as a recursive schema.
const MAX_REF_DEPTH: usize = 32;

/// The value columns of a JSON Schema.
pub(crate) struct JsonColumns {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    nullable: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Boolean,
    Integer,
    Number,
    String,
    /// `format: date-time`: Timestamp(us, UTC).
    DateTime,
    /// `format: date`: Date32.
    Date,
    /// Anything without one column type: the value as JSON text.
    Text,
    Object(Vec<(String, Node)>),
    Map(Box<Node>),
    Array(Box<Node>),
}

impl JsonColumns {
    pub(crate) fn new(schema: &Schema) -> Result<(JsonColumns, Vec<Field>), SinkError> {
        let document =
            schema.json_schema().ok_or_else(|| SinkError::unsupported("", "not a JSON Schema"))?;
        let root = compile(document, document, "", 0)?;
        let fields = match &root.kind {
            Kind::Object(properties) => properties
                .iter()
                .map(|(name, node)| Field::new(name, node.data_type(), node.nullable))
                .collect(),
            _ => vec![Field::new("value", root.data_type(), root.nullable)],
        };
        Ok((JsonColumns { root }, fields))
    }

    pub(crate) fn push(&self, value: &Value, columns: &mut [Column]) -> Result<(), SinkError> {
        match &self.root.kind {
            Kind::Object(properties) => {
                let Value::Object(object) = value else {
                    return Err(SinkError::Mismatch {
                        path: String::new(),
                        reason: "the value is not an object".to_owned(),
                    });
                };
                push_properties(properties, object, columns)
            }
            _ => push(&self.root, Some(value), single_column(columns)?),
        }
    }
}

impl Node {
    fn data_type(&self) -> DataType {
        match &self.kind {
            Kind::Boolean => DataType::Boolean,
            Kind::Integer => DataType::Int64,
            Kind::Number => DataType::Float64,
            Kind::String | Kind::Text => DataType::Utf8,
            Kind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::Object(properties) => DataType::Struct(Fields::from(
                properties
                    .iter()
                    .map(|(name, node)| Field::new(name, node.data_type(), node.nullable))
                    .collect::<Vec<_>>(),
            )),
            Kind::Map(value) => map_of(DataType::Utf8, value.data_type(), value.nullable),
            Kind::Array(item) => list_of(Field::new("element", item.data_type(), item.nullable)),
        }
    }
}

fn text(nullable: bool) -> Node {
    Node { kind: Kind::Text, nullable }
}

fn compile(schema: &Value, root: &Value, path: &str, depth: usize) -> Result<Node, SinkError> {
    let Value::Object(schema) = schema else {
        // `true` (anything) or `false` (nothing).
        return Ok(text(true));
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(SinkError::unsupported(
                path,
                format!("`$ref` to another schema (`{reference}`) is not followed yet"),
            ));
        };
        if depth >= MAX_REF_DEPTH {
            return Err(SinkError::unsupported(
                path,
                format!("`$ref` `{reference}` nests more than {MAX_REF_DEPTH} deep (recursive?)"),
            ));
        }
        let target = root.pointer(pointer).ok_or_else(|| {
            SinkError::unsupported(path, format!("`$ref` `{reference}` points nowhere"))
        })?;
        return compile(target, root, path, depth + 1);
    }
    for keyword in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(keyword) {
            let (nulls, others): (Vec<&Value>, Vec<&Value>) =
                options.iter().partition(|o| o.get("type").and_then(Value::as_str) == Some("null"));
            return match others.as_slice() {
                [single] if !nulls.is_empty() => {
                    let node = compile(single, root, path, depth)?;
                    Ok(Node { nullable: true, ..node })
                }
                _ => Ok(text(true)),
            };
        }
    }
    let mut types: Vec<&str> = match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let nullable = types.contains(&"null");
    types.retain(|name| *name != "null");
    if types.contains(&"integer") && types.contains(&"number") {
        types.retain(|name| *name != "integer");
    }
    let single = match types.as_slice() {
        [single] => *single,
        [] if schema.contains_key("properties") => "object",
        [] if schema.contains_key("items") => "array",
        [] if string_enum(schema) => "string",
        // No type, or several: any JSON value.
        _ => return Ok(text(true)),
    };
    let kind = match single {
        "boolean" => Kind::Boolean,
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Kind::DateTime,
            Some("date") => Kind::Date,
            _ => Kind::String,
        },
        "object" => object_kind(schema, root, path, depth)?,
        "array" => match schema.get("items") {
            Some(items @ Value::Object(_)) => {
                Kind::Array(Box::new(compile(items, root, &format!("{path}[]"), depth)?))
            }
            // Tuples (an array of schemas) and arrays of anything.
            _ => Kind::Array(Box::new(text(true))),
        },
        _ => Kind::Text,
    };
    Ok(Node { kind, nullable })
}

fn string_enum(schema: &Map<String, Value>) -> bool {
    matches!(schema.get("enum"), Some(Value::Array(values)) if values.iter().all(Value::is_string))
}

/// `properties` make a struct (a property not `required` is nullable; properties the schema
/// does not declare are dropped); an object with only `additionalProperties` a map.
fn object_kind(
    schema: &Map<String, Value>,
    root: &Value,
    path: &str,
    depth: usize,
) -> Result<Kind, SinkError> {
    if let Some(Value::Object(properties)) = schema.get("properties") {
        let required: Vec<&str> = match schema.get("required") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(properties.len());
        for (name, property) in properties {
            let node = compile(property, root, &join(path, name), depth)?;
            let nullable = node.nullable || !required.contains(&name.as_str());
            out.push((name.clone(), Node { nullable, ..node }));
        }
        return Ok(Kind::Object(out));
    }
    match schema.get("additionalProperties") {
        Some(values @ Value::Object(_)) => {
            Ok(Kind::Map(Box::new(compile(values, root, &join(path, "value"), depth)?)))
        }
        _ => Ok(Kind::Text),
    }
}

fn push_properties(
    properties: &[(String, Node)],
    object: &Map<String, Value>,
    columns: &mut [Column],
) -> Result<(), SinkError> {
    if properties.len() != columns.len() {
        return Err(SinkError::Arrow(format!(
            "{} properties for {} columns",
            properties.len(),
            columns.len()
        )));
    }
    for ((name, node), column) in properties.iter().zip(columns) {
        push(node, object.get(name), column)?;
    }
    Ok(())
}

fn push(node: &Node, value: Option<&Value>, column: &mut Column) -> Result<(), SinkError> {
    let value = match value {
        None | Some(Value::Null) => return column.push_null(),
        Some(value) => value,
    };
    let wrong = |column: &Column, what: &str| SinkError::Mismatch {
        path: column.path().to_owned(),
        reason: format!("expected {what}, found {}", json_type(value)),
    };
    match &node.kind {
        Kind::Boolean => match value {
            Value::Bool(v) => column.push_bool(*v),
            _ => Err(wrong(column, "a boolean")),
        },
        Kind::Integer => match integer(value) {
            Some(v) => column.push_i64(v),
            None => Err(wrong(column, "an integer within 64 bits")),
        },
        Kind::Number => match value.as_f64() {
            Some(v) => column.push_f64(v),
            None => Err(wrong(column, "a number")),
        },
        Kind::String => match value {
            Value::String(v) => column.push_str(v),
            _ => Err(wrong(column, "a string")),
        },
        Kind::DateTime => {
            let micros = value
                .as_str()
                .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
                .map(|v| v.timestamp_micros());
            match micros {
                Some(v) => column.push_i64(v),
                None => Err(wrong(column, "an RFC 3339 date-time")),
            }
        }
        Kind::Date => {
            let days = value
                .as_str()
                .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
                .and_then(|date| {
                    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
                    i32::try_from(date.signed_duration_since(epoch).num_days()).ok()
                });
            match days {
                Some(v) => column.push_i32(v),
                None => Err(wrong(column, "a date (YYYY-MM-DD)")),
            }
        }
        Kind::Text => column.push_str(&value.to_string()),
        Kind::Object(properties) => {
            let Value::Object(object) = value else {
                return Err(wrong(column, "an object"));
            };
            let children = column.push_struct()?;
            push_properties(properties, object, children)
        }
        Kind::Map(value_node) => {
            let Value::Object(object) = value else {
                return Err(wrong(column, "an object"));
            };
            let (keys, values) = column.map_entries()?;
            for (key, item) in object {
                keys.push_str(key)?;
                push(value_node, Some(item), values)?;
            }
            column.close_list()
        }
        Kind::Array(item_node) => {
            let Value::Array(items) = value else {
                return Err(wrong(column, "an array"));
            };
            let item_column = column.list_items()?;
            for item in items {
                push(item_node, Some(item), item_column)?;
            }
            column.close_list()
        }
    }
}

/// An integer, also when written as a float without a fraction (`1.0` is a JSON Schema
/// integer).
fn integer(value: &Value) -> Option<i64> {
    if let Some(v) = value.as_i64() {
        return Some(v);
    }
    let v = value.as_f64()?;
    // i64::MAX as f64 rounds up to 2^63, which does not fit: the bound is exclusive.
    (v.fract() == 0.0 && v >= -(2f64.powi(63)) && v < 2f64.powi(63)).then_some(v as i64)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
