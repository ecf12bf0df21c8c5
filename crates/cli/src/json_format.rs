//! `--format json` of `skiff produce` and `skiff consume`: JSON documents encoded into, and
//! decoded from, Confluent's wire format through the topic's schema in a registry.

use std::collections::HashMap;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use clap::ValueEnum;
use skiff_schema::{wire, Schema, SchemaType};

use crate::registry_client::{self, RegistryClient};

/// How records are read from input lines and written as output lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RecordFormat {
    /// Values as they are: input lines are the bytes sent, values are printed as (lossy) UTF-8.
    Text,
    /// Values are JSON documents, in the wire format of the topic's schema (`<topic>-value`).
    Json,
}

/// The Protobuf message a produced value is: the first of the schema's file.
const FIRST_MESSAGE: [i32; 1] = [0];

/// Encodes JSON values with the latest schema of a topic's `<topic>-value` subject.
pub(crate) struct JsonEncoder {
    subject: String,
    schema: Schema,
    /// Magic byte, schema id and (Protobuf) message indexes: the same for every record.
    header: Vec<u8>,
}

impl JsonEncoder {
    /// Looks up the latest version of `<topic>-value`.
    pub(crate) async fn for_topic(registry: &RegistryClient, topic: &str) -> anyhow::Result<Self> {
        let subject = format!("{topic}-value");
        let latest = match registry.version(&subject, "latest").await {
            Err(error)
                if registry_client::is_code(&error, &[registry_client::SUBJECT_NOT_FOUND]) =>
            {
                return Err(error.context(format!(
                    "topic {topic} has no value schema: register one under {subject} \
                     (skiff schema register {subject} FILE)"
                )))
            }
            other => other.with_context(|| format!("looking up the schema of {subject}"))?,
        };
        let schema = registry
            .parse_schema(latest.schema_type, &latest.schema, &latest.references)
            .await
            .with_context(|| format!("{subject} version {}", latest.version))?;
        let header = wire::encode_header(latest.id, latest.schema_type, &FIRST_MESSAGE);
        Ok(Self { subject, schema, header })
    }

    /// The subject whose schema encodes the values.
    pub(crate) fn subject(&self) -> &str {
        &self.subject
    }

    /// One input line (a JSON document) as a value in the wire format, or why it cannot be.
    pub(crate) fn encode(&self, line: &[u8]) -> Result<Bytes, String> {
        let json: serde_json::Value =
            serde_json::from_slice(line).map_err(|error| format!("not JSON: {error}"))?;
        let payload =
            self.schema.encode_json(&json, &FIRST_MESSAGE).map_err(|error| error.to_string())?;
        let mut value = Vec::with_capacity(self.header.len() + payload.len());
        value.extend_from_slice(&self.header);
        value.extend_from_slice(&payload);
        Ok(Bytes::from(value))
    }
}

/// Decodes values in the wire format by their schema id; schemas are fetched once per id (an
/// id never changes meaning).
pub(crate) struct JsonDecoder {
    registry: RegistryClient,
    schemas: HashMap<u32, Schema>,
}

impl JsonDecoder {
    pub(crate) fn new(registry: RegistryClient) -> Self {
        Self { registry, schemas: HashMap::new() }
    }

    /// Fetches the schema `value` names, unless it is known already. Values that are not in the
    /// wire format are left for [`JsonDecoder::decode`] to refuse.
    pub(crate) async fn load(&mut self, value: &[u8]) -> anyhow::Result<()> {
        let Some(id) = schema_id(value) else { return Ok(()) };
        if !self.schemas.contains_key(&id) {
            let schema = self.registry.schema_by_id(id).await?;
            self.schemas.insert(id, schema);
        }
        Ok(())
    }

    /// A value as one line of compact JSON; its schema must have been [`JsonDecoder::load`]ed.
    pub(crate) fn decode(&self, value: &[u8]) -> anyhow::Result<String> {
        let id = schema_id(value).ok_or_else(|| {
            anyhow!(
                "{}",
                wire::parse(value, SchemaType::Avro).err().map_or_else(
                    || "not in the schema registry's wire format".to_owned(),
                    |error| error.to_string()
                )
            )
        })?;
        let schema =
            self.schemas.get(&id).ok_or_else(|| anyhow!("schema id {id} was not looked up"))?;
        let framed = wire::parse(value, schema.schema_type())?;
        let json = schema
            .decode_json(framed.payload, &framed.message_indexes)
            .with_context(|| format!("decoding with schema id {id}"))?;
        Ok(json.to_string())
    }
}

/// The schema id of a value in the wire format (magic byte 0, then 4 bytes).
fn schema_id(value: &[u8]) -> Option<u32> {
    match value {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"type":"record","name":"R","fields":[
        {"name":"id","type":"string"},{"name":"n","type":"long"}]}"#;

    fn encoder(schema_type: SchemaType, text: &str, id: u32) -> anyhow::Result<JsonEncoder> {
        Ok(JsonEncoder {
            subject: "t-value".into(),
            schema: Schema::parse(schema_type, text, &[])?,
            header: wire::encode_header(id, schema_type, &FIRST_MESSAGE),
        })
    }

    fn decoder(id: u32, schema_type: SchemaType, text: &str) -> anyhow::Result<JsonDecoder> {
        let mut decoder = JsonDecoder::new(RegistryClient::new("http://127.0.0.1:1")?);
        decoder.schemas.insert(id, Schema::parse(schema_type, text, &[])?);
        Ok(decoder)
    }

    #[test]
    fn avro_lines_become_wire_format_values_and_back() -> anyhow::Result<()> {
        let encoder = encoder(SchemaType::Avro, RECORD, 7)?;
        let value = encoder.encode(br#"{"id": "a", "n": 3}"#).map_err(|e| anyhow!(e))?;
        assert_eq!(value.as_ref(), &[0, 0, 0, 0, 7, 2, b'a', 6]);
        let decoder = decoder(7, SchemaType::Avro, RECORD)?;
        assert_eq!(decoder.decode(&value)?, r#"{"id":"a","n":3}"#);
        Ok(())
    }

    #[test]
    fn protobuf_values_carry_the_first_message_index() -> anyhow::Result<()> {
        let proto = "syntax = \"proto3\"; message M { string id = 1; }";
        let encoder = encoder(SchemaType::Protobuf, proto, 2)?;
        let value = encoder.encode(br#"{"id": "x"}"#).map_err(|e| anyhow!(e))?;
        assert_eq!(value.as_ref(), &[0, 0, 0, 0, 2, 0, 10, 1, b'x']);
        assert_eq!(decoder(2, SchemaType::Protobuf, proto)?.decode(&value)?, r#"{"id":"x"}"#);
        Ok(())
    }

    #[test]
    fn json_schema_values_are_the_document_after_the_header() -> anyhow::Result<()> {
        let schema = r#"{"type":"object","required":["id"]}"#;
        let encoder = encoder(SchemaType::Json, schema, 1)?;
        let value = encoder.encode(br#"{"id": 1}"#).map_err(|e| anyhow!(e))?;
        assert_eq!(value.as_ref(), b"\0\0\0\0\x01{\"id\":1}");
        assert_eq!(decoder(1, SchemaType::Json, schema)?.decode(&value)?, r#"{"id":1}"#);
        Ok(())
    }

    #[test]
    fn bad_lines_and_values_say_why() -> anyhow::Result<()> {
        let encoder = encoder(SchemaType::Avro, RECORD, 7)?;
        let not_json = encoder.encode(b"{oops").err().unwrap_or_default();
        assert!(not_json.starts_with("not JSON: "), "{not_json}");
        assert!(encoder.encode(br#"{"id": "a"}"#).is_err());
        let decoder = decoder(7, SchemaType::Avro, RECORD)?;
        let plain = decoder.decode(b"hello").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(plain, "magic byte 0x68 is not 0: not in the schema registry's wire format");
        let unknown = decoder.decode(&[0, 0, 0, 0, 9, 1]).err().map(|e| e.to_string());
        assert_eq!(unknown.as_deref(), Some("schema id 9 was not looked up"));
        Ok(())
    }
}
