//! Record batches to rows and back: the shared record codec
//! ([`skiff_protocol::records`]) plus the SQL type rows keep headers in.
//!
//! Produce decodes each v2 batch into its records; Fetch rebuilds batches from the rows and the
//! batch row that kept everything else (producer fields, attributes, timestamps).

use postgres_types::{FromSql, ToSql};
use skiff_protocol::records::RecordHeader;

use crate::text;

pub(crate) use skiff_protocol::records::{codec_for, BatchFields, Record as RowRecord};

/// One record header as stored (`skiff.header`): repeated keys keep their order, and the key is
/// escaped (`crate::text`) since a Kafka header key may hold U+0000.
#[derive(Debug, Clone, PartialEq, Eq, ToSql, FromSql)]
#[postgres(name = "header")]
pub(crate) struct Header {
    pub(crate) key: String,
    pub(crate) value: Option<Vec<u8>>,
}

impl From<&RecordHeader> for Header {
    fn from(header: &RecordHeader) -> Self {
        Self { key: text::escape(&header.key).into_owned(), value: header.value.clone() }
    }
}

impl TryFrom<Header> for RecordHeader {
    type Error = skiff_storage::StorageError;

    fn try_from(header: Header) -> skiff_storage::Result<Self> {
        Ok(Self { key: text::unescape(header.key)?, value: header.value })
    }
}

/// The records of a validated batch, headers in order with duplicates.
pub(crate) fn decode(batch: &skiff_storage::Batch) -> skiff_storage::Result<Vec<RowRecord>> {
    skiff_protocol::records::decode(batch).map_err(invalid)
}

/// Rebuilds a v2 batch from its stored fields and records, compressed with `codec`.
pub(crate) fn encode(
    fields: &BatchFields,
    records: &[RowRecord],
    codec: i16,
) -> skiff_storage::Result<bytes::Bytes> {
    skiff_protocol::records::encode(fields, records, codec).map_err(invalid)
}

fn invalid(error: skiff_protocol::batch::BatchError) -> skiff_storage::StorageError {
    skiff_storage::StorageError::InvalidArgument(error.to_string())
}
