//! Column storage that grows a row at a time and can be cut back to a length: what lets a row
//! that fails half-way (a payload that does not fit the schema) leave no trace in the batch.
//! Arrow's own builders cannot shrink, so values go into plain vectors here and become Arrow
//! arrays in [`Column::finish`].

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Int32Type, Int64Type, Time32MillisecondType, Time64MicrosecondType,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, Float32Array, Float64Array,
    ListArray, MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, TimeUnit};

use crate::SinkError;

/// One column (at any depth): its values so far, a validity flag per row, and the path that
/// error messages name (`address.zip`, `tags[]`, `attributes.value`).
pub(crate) struct Column {
    path: String,
    data_type: DataType,
    nullable: bool,
    validity: Vec<bool>,
    values: Values,
}

enum Values {
    Boolean(Vec<bool>),
    /// Int32, Date32 and Time32(ms).
    Int32(Vec<i32>),
    /// Int64, timestamps and Time64(us).
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    /// Unscaled values, each checked against the precision when pushed.
    Decimal128 {
        precision: u8,
        values: Vec<i128>,
    },
    /// Utf8 and Binary: `offsets` starts with 0 and has one more entry than there are rows.
    Bytes {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Fixed {
        size: usize,
        data: Vec<u8>,
    },
    Struct(Vec<Column>),
    List {
        offsets: Vec<i32>,
        item: Box<Column>,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Column>,
        values: Box<Column>,
    },
}

impl Column {
    /// An empty column for `field`, named `path` in errors.
    pub(crate) fn new(path: String, field: &Field) -> Result<Column, SinkError> {
        let unsupported = || SinkError::UnsupportedSchema {
            path: path.clone(),
            reason: format!("no column storage for Arrow type {}", field.data_type()),
        };
        let values = match field.data_type() {
            DataType::Boolean => Values::Boolean(Vec::new()),
            DataType::Int32 | DataType::Date32 | DataType::Time32(TimeUnit::Millisecond) => {
                Values::Int32(Vec::new())
            }
            DataType::Int64
            | DataType::Timestamp(_, _)
            | DataType::Time64(TimeUnit::Microsecond) => Values::Int64(Vec::new()),
            DataType::Float32 => Values::Float32(Vec::new()),
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Decimal128(precision, _) => {
                Values::Decimal128 { precision: *precision, values: Vec::new() }
            }
            DataType::Utf8 | DataType::Binary => {
                Values::Bytes { offsets: vec![0], data: Vec::new() }
            }
            DataType::FixedSizeBinary(size) => Values::Fixed {
                size: usize::try_from(*size).map_err(|_| unsupported())?,
                data: Vec::new(),
            },
            DataType::Struct(fields) => Values::Struct(
                fields
                    .iter()
                    .map(|child| Column::new(crate::join(&path, child.name()), child))
                    .collect::<Result<_, _>>()?,
            ),
            DataType::List(item) => Values::List {
                offsets: vec![0],
                item: Box::new(Column::new(format!("{path}[]"), item)?),
            },
            DataType::Map(entries, _) => {
                let DataType::Struct(fields) = entries.data_type() else {
                    return Err(unsupported());
                };
                let (Some(key), Some(value)) = (fields.first(), fields.get(1)) else {
                    return Err(unsupported());
                };
                Values::Map {
                    offsets: vec![0],
                    keys: Box::new(Column::new(crate::join(&path, key.name()), key)?),
                    values: Box::new(Column::new(crate::join(&path, value.name()), value)?),
                }
            }
            _ => return Err(unsupported()),
        };
        Ok(Column {
            path,
            data_type: field.data_type().clone(),
            nullable: field.is_nullable(),
            validity: Vec::new(),
            values,
        })
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn len(&self) -> usize {
        self.validity.len()
    }

    fn mismatch(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Mismatch { path: self.path.clone(), reason: reason.into() }
    }

    fn expected(&self, what: &str) -> SinkError {
        self.mismatch(format!("a {what} does not fit the column's type {}", self.data_type))
    }

    /// A missing or null value: an error when the column is not nullable.
    pub(crate) fn push_null(&mut self) -> Result<(), SinkError> {
        if !self.nullable {
            return Err(self.mismatch("is required, but the value is null or missing"));
        }
        self.pad();
        Ok(())
    }

    /// A null slot whatever the column's nullability: the children of a null struct, whose
    /// parent's null masks them.
    fn pad(&mut self) {
        self.validity.push(false);
        match &mut self.values {
            Values::Boolean(values) => values.push(false),
            Values::Int32(values) => values.push(0),
            Values::Int64(values) => values.push(0),
            Values::Float32(values) => values.push(0.0),
            Values::Float64(values) => values.push(0.0),
            Values::Decimal128 { values, .. } => values.push(0),
            Values::Bytes { offsets, .. }
            | Values::List { offsets, .. }
            | Values::Map { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
            }
            Values::Fixed { size, data } => data.resize(data.len() + *size, 0),
            Values::Struct(children) => children.iter_mut().for_each(Column::pad),
        }
    }

    pub(crate) fn push_bool(&mut self, value: bool) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Boolean(values) => values.push(value),
            _ => return Err(self.expected("boolean")),
        }
        self.validity.push(true);
        Ok(())
    }

    pub(crate) fn push_i32(&mut self, value: i32) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Int32(values) => values.push(value),
            Values::Int64(values) => values.push(i64::from(value)),
            _ => return Err(self.expected("32-bit integer")),
        }
        self.validity.push(true);
        Ok(())
    }

    pub(crate) fn push_i64(&mut self, value: i64) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Int64(values) => values.push(value),
            _ => return Err(self.expected("64-bit integer")),
        }
        self.validity.push(true);
        Ok(())
    }

    pub(crate) fn push_f32(&mut self, value: f32) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Float32(values) => values.push(value),
            _ => return Err(self.expected("float")),
        }
        self.validity.push(true);
        Ok(())
    }

    pub(crate) fn push_f64(&mut self, value: f64) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Float64(values) => values.push(value),
            _ => return Err(self.expected("double")),
        }
        self.validity.push(true);
        Ok(())
    }

    /// An unscaled decimal; refused when it has more digits than the column's precision.
    pub(crate) fn push_i128(&mut self, value: i128) -> Result<(), SinkError> {
        let Values::Decimal128 { precision, values } = &mut self.values else {
            return Err(self.expected("decimal"));
        };
        let bound = 10i128.checked_pow(u32::from(*precision)).unwrap_or(i128::MAX);
        if value.checked_abs().is_none_or(|magnitude| magnitude >= bound) {
            let precision = *precision;
            return Err(self.mismatch(format!("decimal has more than {precision} digits")));
        }
        values.push(value);
        self.validity.push(true);
        Ok(())
    }

    /// A string for a Utf8 column.
    pub(crate) fn push_str(&mut self, value: &str) -> Result<(), SinkError> {
        if self.data_type != DataType::Utf8 {
            return Err(self.expected("string"));
        }
        self.push_variable(value.as_bytes())
    }

    /// Bytes for a Binary or FixedSizeBinary column (whose size they must have).
    pub(crate) fn push_bytes(&mut self, value: &[u8]) -> Result<(), SinkError> {
        match &mut self.values {
            Values::Fixed { size, data } => {
                if value.len() != *size {
                    let size = *size;
                    return Err(self.mismatch(format!(
                        "{} bytes do not fit a fixed size of {size}",
                        value.len()
                    )));
                }
                data.extend_from_slice(value);
                self.validity.push(true);
                Ok(())
            }
            Values::Bytes { .. } if self.data_type == DataType::Binary => self.push_variable(value),
            _ => Err(self.expected("byte string")),
        }
    }

    fn push_variable(&mut self, value: &[u8]) -> Result<(), SinkError> {
        let Values::Bytes { offsets, data } = &mut self.values else {
            return Err(self.expected("byte string"));
        };
        let end = i32::try_from(data.len() + value.len()).map_err(|_| SinkError::Mismatch {
            path: self.path.clone(),
            reason: "more than 2 GiB in one column of one batch".to_owned(),
        })?;
        data.extend_from_slice(value);
        offsets.push(end);
        self.validity.push(true);
        Ok(())
    }

    /// Starts a non-null struct value: the caller pushes exactly one value to each child
    /// (checked in [`Column::finish`]).
    pub(crate) fn push_struct(&mut self) -> Result<&mut [Column], SinkError> {
        if !matches!(self.values, Values::Struct(_)) {
            return Err(self.expected("record"));
        }
        self.validity.push(true);
        match &mut self.values {
            Values::Struct(children) => Ok(children.as_mut_slice()),
            _ => {
                Err(SinkError::Mismatch { path: self.path.clone(), reason: "not a struct".into() })
            }
        }
    }

    /// The item column of a list: push the items, then [`Column::close_list`].
    pub(crate) fn list_items(&mut self) -> Result<&mut Column, SinkError> {
        if !matches!(self.values, Values::List { .. }) {
            return Err(self.expected("list"));
        }
        match &mut self.values {
            Values::List { item, .. } => Ok(item.as_mut()),
            _ => Err(SinkError::Mismatch { path: self.path.clone(), reason: "not a list".into() }),
        }
    }

    /// Ends a non-null list or map value after its items or entries were pushed.
    pub(crate) fn close_list(&mut self) -> Result<(), SinkError> {
        let (offsets, end) = match &mut self.values {
            Values::List { offsets, item } => (offsets, item.len()),
            Values::Map { offsets, keys, .. } => (offsets, keys.len()),
            _ => return Err(self.expected("list or map")),
        };
        let end = i32::try_from(end).map_err(|_| SinkError::Mismatch {
            path: self.path.clone(),
            reason: "more than 2^31 items in one column of one batch".to_owned(),
        })?;
        offsets.push(end);
        self.validity.push(true);
        Ok(())
    }

    /// The key and value columns of a map: push one key and one value per entry, then
    /// [`Column::close_list`].
    pub(crate) fn map_entries(&mut self) -> Result<(&mut Column, &mut Column), SinkError> {
        if !matches!(self.values, Values::Map { .. }) {
            return Err(self.expected("map"));
        }
        match &mut self.values {
            Values::Map { keys, values, .. } => Ok((keys.as_mut(), values.as_mut())),
            _ => Err(SinkError::Mismatch { path: self.path.clone(), reason: "not a map".into() }),
        }
    }

    /// Cuts the column back to its first `len` rows (and nested columns to what those rows
    /// hold): undoes a row that failed half-way.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.validity.truncate(len);
        match &mut self.values {
            Values::Boolean(values) => values.truncate(len),
            Values::Int32(values) => values.truncate(len),
            Values::Int64(values) => values.truncate(len),
            Values::Float32(values) => values.truncate(len),
            Values::Float64(values) => values.truncate(len),
            Values::Decimal128 { values, .. } => values.truncate(len),
            Values::Bytes { offsets, data } => {
                offsets.truncate(len + 1);
                data.truncate(end_of(offsets));
            }
            Values::Fixed { size, data } => data.truncate(len * *size),
            Values::Struct(children) => children.iter_mut().for_each(|c| c.truncate(len)),
            Values::List { offsets, item } => {
                offsets.truncate(len + 1);
                item.truncate(end_of(offsets));
            }
            Values::Map { offsets, keys, values } => {
                offsets.truncate(len + 1);
                keys.truncate(end_of(offsets));
                values.truncate(end_of(offsets));
            }
        }
    }

    /// The values so far as an Arrow array; the column is empty afterwards.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, SinkError> {
        let len = self.len();
        let validity = std::mem::take(&mut self.validity);
        let nulls = if validity.iter().all(|&valid| valid) {
            None
        } else {
            Some(NullBuffer::from(validity))
        };
        let arrow = |e: ArrowError| SinkError::Arrow(format!("column `{}`: {e}", self.path));
        let array: ArrayRef = match (&mut self.values, &self.data_type) {
            (Values::Boolean(values), _) => {
                Arc::new(BooleanArray::new(BooleanBuffer::from(std::mem::take(values)), nulls))
            }
            (Values::Int32(values), data_type) => {
                let values = ScalarBuffer::from(std::mem::take(values));
                match data_type {
                    DataType::Date32 => Arc::new(
                        PrimitiveArray::<Date32Type>::try_new(values, nulls).map_err(arrow)?,
                    ),
                    DataType::Time32(_) => Arc::new(
                        PrimitiveArray::<Time32MillisecondType>::try_new(values, nulls)
                            .map_err(arrow)?,
                    ),
                    _ => Arc::new(
                        PrimitiveArray::<Int32Type>::try_new(values, nulls).map_err(arrow)?,
                    ),
                }
            }
            (Values::Int64(values), data_type) => {
                let values = ScalarBuffer::from(std::mem::take(values));
                match data_type {
                    DataType::Timestamp(unit, zone) => match unit {
                        TimeUnit::Millisecond => Arc::new(
                            PrimitiveArray::<TimestampMillisecondType>::try_new(values, nulls)
                                .map_err(arrow)?
                                .with_timezone_opt(zone.clone()),
                        ),
                        TimeUnit::Microsecond => Arc::new(
                            PrimitiveArray::<TimestampMicrosecondType>::try_new(values, nulls)
                                .map_err(arrow)?
                                .with_timezone_opt(zone.clone()),
                        ),
                        TimeUnit::Nanosecond | TimeUnit::Second => Arc::new(
                            PrimitiveArray::<TimestampNanosecondType>::try_new(values, nulls)
                                .map_err(arrow)?
                                .with_timezone_opt(zone.clone()),
                        ),
                    },
                    DataType::Time64(_) => Arc::new(
                        PrimitiveArray::<Time64MicrosecondType>::try_new(values, nulls)
                            .map_err(arrow)?,
                    ),
                    _ => Arc::new(
                        PrimitiveArray::<Int64Type>::try_new(values, nulls).map_err(arrow)?,
                    ),
                }
            }
            (Values::Float32(values), _) => Arc::new(
                Float32Array::try_new(ScalarBuffer::from(std::mem::take(values)), nulls)
                    .map_err(arrow)?,
            ),
            (Values::Float64(values), _) => Arc::new(
                Float64Array::try_new(ScalarBuffer::from(std::mem::take(values)), nulls)
                    .map_err(arrow)?,
            ),
            (Values::Decimal128 { values, .. }, data_type) => {
                let DataType::Decimal128(precision, scale) = data_type else {
                    return Err(SinkError::Arrow(format!("column `{}`: not a decimal", self.path)));
                };
                Arc::new(
                    PrimitiveArray::<Decimal128Type>::try_new(
                        ScalarBuffer::from(std::mem::take(values)),
                        nulls,
                    )
                    .and_then(|array| array.with_precision_and_scale(*precision, *scale))
                    .map_err(arrow)?,
                )
            }
            (Values::Bytes { offsets, data }, data_type) => {
                let offsets = take_offsets(offsets);
                let data = Buffer::from_vec(std::mem::take(data));
                if *data_type == DataType::Utf8 {
                    Arc::new(StringArray::try_new(offsets, data, nulls).map_err(arrow)?)
                } else {
                    Arc::new(BinaryArray::try_new(offsets, data, nulls).map_err(arrow)?)
                }
            }
            (Values::Fixed { size, data }, _) => {
                let size = i32::try_from(*size).map_err(|e| SinkError::Arrow(e.to_string()))?;
                let data = Buffer::from_vec(std::mem::take(data));
                Arc::new(FixedSizeBinaryArray::try_new(size, data, nulls).map_err(arrow)?)
            }
            (Values::Struct(children), DataType::Struct(fields)) => {
                let mut arrays = Vec::with_capacity(children.len());
                for child in children.iter_mut() {
                    if child.len() != len {
                        return Err(SinkError::Mismatch {
                            path: child.path.clone(),
                            reason: format!("has {} values for {len} rows", child.len()),
                        });
                    }
                    arrays.push(child.finish()?);
                }
                Arc::new(StructArray::try_new(fields.clone(), arrays, nulls).map_err(arrow)?)
            }
            (Values::List { offsets, item }, DataType::List(field)) => {
                let offsets = take_offsets(offsets);
                let items = item.finish()?;
                Arc::new(ListArray::try_new(field.clone(), offsets, items, nulls).map_err(arrow)?)
            }
            (Values::Map { offsets, keys, values }, DataType::Map(entries, sorted)) => {
                let DataType::Struct(fields) = entries.data_type() else {
                    return Err(SinkError::Arrow(format!("column `{}`: not a map", self.path)));
                };
                let offsets = take_offsets(offsets);
                let entry_columns = vec![keys.finish()?, values.finish()?];
                let entry_array =
                    StructArray::try_new(fields.clone(), entry_columns, None).map_err(arrow)?;
                Arc::new(
                    MapArray::try_new(entries.clone(), offsets, entry_array, nulls, *sorted)
                        .map_err(arrow)?,
                )
            }
            (Values::Struct(_) | Values::List { .. } | Values::Map { .. }, data_type) => {
                return Err(SinkError::Arrow(format!(
                    "column `{}`: storage does not match type {data_type}",
                    self.path
                )))
            }
        };
        Ok(array)
    }
}

fn end_of(offsets: &[i32]) -> usize {
    offsets.last().and_then(|&end| usize::try_from(end).ok()).unwrap_or(0)
}

/// The offsets as an Arrow buffer, leaving `[0]` behind for the next batch.
fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let taken = std::mem::replace(offsets, vec![0]);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}
