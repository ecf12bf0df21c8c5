//! `skiff.table.partition.by`: how a table's rows are partitioned, written once for every
//! format that partitions (Iceberg maps it onto its partition spec).
//!
//! The value is a comma-separated list of terms in Iceberg's (and Spark SQL's `PARTITIONED BY`)
//! vocabulary, each naming a column of the table (a Kafka column such as `_timestamp`, a value
//! column, or a nested one as `customer.region`):
//!
//! | term | partitions by |
//! | --- | --- |
//! | `region` | the column's value (identity) |
//! | `year(ts)`, `month(ts)`, `day(ts)` | the date or timestamp's year, month, day |
//! | `hour(ts)` | a timestamp's hour |
//! | `bucket(16, id)` | a hash of the value into 16 buckets |
//! | `truncate(4, name)` | the value truncated to width 4 (strings: 4 characters) |
//!
//! Parsing checks the syntax; [`PartitionBy::check`] checks the columns against a table's Arrow
//! schema (they exist, are not structs, lists or maps, and suit the transform), so a topic
//! gets INVALID_CONFIG at creation rather than a table writer failing later.

use std::fmt;

use arrow_schema::{DataType, Field, Schema};

/// What rows are partitioned by: empty for an unpartitioned table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionBy {
    fields: Vec<PartitionField>,
}

/// One term: a transform of a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    /// The column's dotted path (`_timestamp`, `customer.region`).
    pub column: String,
    pub transform: Transform,
}

/// The transforms of Iceberg's partition specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    /// Hash into this many buckets.
    Bucket(u32),
    /// Truncate to this width.
    Truncate(u32),
}

impl PartitionBy {
    /// Parses a `skiff.table.partition.by` value; the empty string is no partitioning.
    pub fn parse(value: &str) -> Result<PartitionBy, String> {
        let mut fields = Vec::new();
        for term in split_terms(value)? {
            let field = PartitionField::parse(term)?;
            if fields.iter().any(|known: &PartitionField| known.name() == field.name()) {
                return Err(format!("partition field {:?} is given twice", field.name()));
            }
            fields.push(field);
        }
        Ok(PartitionBy { fields })
    }

    /// The terms, in order.
    pub fn fields(&self) -> &[PartitionField] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Checks every term against a table's columns: a message for the client if one names a
    /// column the table lacks, a nested type, or a type its transform does not take.
    pub fn check(&self, schema: &Schema) -> Result<(), String> {
        for field in &self.fields {
            let column = find_column(schema, &field.column).ok_or_else(|| {
                format!("partition by {field}: the table has no column {:?}", field.column)
            })?;
            if !field.transform.accepts(column.data_type()) {
                return Err(format!(
                    "partition by {field}: column {:?} is {}, which {} does not take",
                    field.column,
                    column.data_type(),
                    field.transform.name()
                ));
            }
        }
        Ok(())
    }
}

impl PartitionBy {
    /// Why a Delta Lake table cannot be partitioned so, if it cannot. Delta partitions by the
    /// values of top-level columns: a time transform becomes a column the writer derives
    /// (`_timestamp_day`), but `bucket` and `truncate` have no counterpart, and an identity
    /// term must name a top-level column.
    pub fn delta_refusal(&self) -> Option<String> {
        self.fields.iter().find_map(|field| match field.transform {
            Transform::Bucket(_) | Transform::Truncate(_) => Some(format!(
                "partition by {field}: Delta Lake tables have no bucket or truncate partitions \
                 (identity, year, month, day and hour are theirs)"
            )),
            Transform::Identity if field.column.contains('.') => Some(format!(
                "partition by {field}: a Delta Lake partition column is a top-level column"
            )),
            _ => None,
        })
    }

    /// [`PartitionBy::check`] for a Delta Lake table: also [`PartitionBy::delta_refusal`], and
    /// identity columns only of the types whose values Delta writes as partition values
    /// (integers, strings, booleans, dates, decimals, floats); a timestamp is partitioned by
    /// `day(..)` or `hour(..)`.
    pub fn check_delta(&self, schema: &Schema) -> Result<(), String> {
        self.check(schema)?;
        if let Some(refusal) = self.delta_refusal() {
            return Err(refusal);
        }
        for field in self.fields.iter().filter(|f| f.transform == Transform::Identity) {
            let Some(column) = find_column(schema, &field.column) else { continue };
            use DataType::*;
            let plain = column.data_type().is_integer()
                || column.data_type().is_floating()
                || matches!(
                    column.data_type(),
                    Utf8 | LargeUtf8 | Boolean | Date32 | Decimal128(..)
                );
            if !plain {
                return Err(format!(
                    "partition by {field}: a Delta Lake partition column cannot be {} (partition \
                     a timestamp by day({}) or hour({}))",
                    column.data_type(),
                    field.column,
                    field.column
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for PartitionBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, field) in self.fields.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

impl PartitionField {
    fn parse(term: &str) -> Result<PartitionField, String> {
        let Some((function, rest)) = term.split_once('(') else {
            return Ok(PartitionField {
                column: column_path(term)?,
                transform: Transform::Identity,
            });
        };
        let Some(arguments) = rest.strip_suffix(')') else {
            return Err(format!("{term:?}: a transform ends with ')'"));
        };
        let arguments: Vec<&str> = arguments.split(',').map(str::trim).collect();
        let function = function.trim().to_ascii_lowercase();
        let (transform, column) = match (function.as_str(), arguments.as_slice()) {
            ("identity", [column]) => (Transform::Identity, column),
            ("year" | "years", [column]) => (Transform::Year, column),
            ("month" | "months", [column]) => (Transform::Month, column),
            ("day" | "days", [column]) => (Transform::Day, column),
            ("hour" | "hours", [column]) => (Transform::Hour, column),
            ("bucket", [count, column]) => (Transform::Bucket(positive(term, count)?), column),
            ("truncate", [width, column]) => (Transform::Truncate(positive(term, width)?), column),
            ("bucket" | "truncate", _) => {
                return Err(format!("{term:?}: {function} takes a number and a column"))
            }
            (
                "identity" | "year" | "years" | "month" | "months" | "day" | "days" | "hour"
                | "hours",
                _,
            ) => return Err(format!("{term:?}: {function} takes one column")),
            _ => {
                return Err(format!(
                    "{term:?}: unknown transform {function:?} (identity, year, month, day, hour, \
                     bucket, truncate)"
                ))
            }
        };
        Ok(PartitionField { column: column_path(column)?, transform })
    }

    /// The partition field's name in a table, as Iceberg's engines name them: the column for
    /// identity, else `<column>_<transform>` (`_timestamp_day`, `id_bucket`).
    pub fn name(&self) -> String {
        let column = self.column.replace('.', "_");
        match self.transform {
            Transform::Identity => self.column.clone(),
            Transform::Year => format!("{column}_year"),
            Transform::Month => format!("{column}_month"),
            Transform::Day => format!("{column}_day"),
            Transform::Hour => format!("{column}_hour"),
            Transform::Bucket(_) => format!("{column}_bucket"),
            Transform::Truncate(_) => format!("{column}_trunc"),
        }
    }
}

impl fmt::Display for PartitionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let column = &self.column;
        match self.transform {
            Transform::Identity => write!(f, "{column}"),
            Transform::Bucket(n) => write!(f, "bucket({n}, {column})"),
            Transform::Truncate(w) => write!(f, "truncate({w}, {column})"),
            other => write!(f, "{}({column})", other.name()),
        }
    }
}

impl Transform {
    /// Its name in partition specs (`day`, `bucket`).
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Identity => "identity",
            Transform::Year => "year",
            Transform::Month => "month",
            Transform::Day => "day",
            Transform::Hour => "hour",
            Transform::Bucket(_) => "bucket",
            Transform::Truncate(_) => "truncate",
        }
    }

    /// Whether a column of this Arrow type can be partitioned with the transform (Iceberg's
    /// rules: dates and timestamps for the time transforms, no floats in buckets, ...).
    fn accepts(&self, data_type: &DataType) -> bool {
        use DataType::*;
        let time = matches!(data_type, Date32 | Date64 | Timestamp(..));
        let text = matches!(data_type, Utf8 | LargeUtf8 | Binary | LargeBinary);
        let integer = matches!(data_type, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32);
        let decimal = matches!(data_type, Decimal128(..));
        match self {
            Transform::Identity => !data_type.is_nested(),
            Transform::Year | Transform::Month | Transform::Day => time,
            Transform::Hour => matches!(data_type, Timestamp(..)),
            Transform::Bucket(_) => {
                integer
                    || decimal
                    || text
                    || time
                    || matches!(data_type, FixedSizeBinary(_) | Time64(_) | Time32(_))
            }
            Transform::Truncate(_) => integer || decimal || text,
        }
    }
}

/// The terms of a value: split at commas outside parentheses, blanks ignored.
fn split_terms(value: &str) -> Result<Vec<&str>, String> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (index, character) in value.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth =
                    depth.checked_sub(1).ok_or_else(|| format!("{value:?}: ')' without '('"))?;
            }
            ',' if depth == 0 => {
                terms.push(value[start..index].trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{value:?}: '(' without ')'"));
    }
    terms.push(value[start..].trim());
    if terms.len() > 1 && terms.iter().any(|term| term.is_empty()) {
        return Err(format!("{value:?}: an empty term between commas"));
    }
    Ok(terms.into_iter().filter(|term| !term.is_empty()).collect())
}

/// A column's dotted path, each part a plain name.
fn column_path(text: &str) -> Result<String, String> {
    let text = text.trim();
    let plain = |part: &str| {
        !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    };
    if text.split('.').all(plain) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a column name (a dotted path of names)"))
    }
}

fn positive(term: &str, number: &str) -> Result<u32, String> {
    match number.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{term:?}: {number:?} is not a positive number")),
    }
}

/// The field at a dotted path, through structs only.
fn find_column<'a>(schema: &'a Schema, path: &str) -> Option<&'a Field> {
    let mut parts = path.split('.');
    let mut field = schema.field_with_name(parts.next()?).ok()?;
    for part in parts {
        let DataType::Struct(children) = field.data_type() else { return None };
        field = children.iter().find(|child| child.name() == part)?;
    }
    Some(field)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Fields, TimeUnit};

    use super::*;

    #[test]
    fn delta_takes_time_transforms_and_plain_top_level_columns() {
        let schema = Schema::new(vec![
            Field::new("_timestamp", DataType::Timestamp(TimeUnit::Millisecond, None), false),
            Field::new("region", DataType::Utf8, true),
            Field::new("id", DataType::Int64, false),
            Field::new(
                "customer",
                DataType::Struct(Fields::from(vec![Field::new("tier", DataType::Utf8, true)])),
                true,
            ),
        ]);
        let ok = |value: &str| PartitionBy::parse(value).expect("parses").check_delta(&schema);
        ok("day(_timestamp), region, id").expect("Delta takes these");
        ok("year(_timestamp), month(_timestamp), hour(_timestamp)").expect("and these");
        for (value, reason) in [
            ("bucket(4, id)", "no bucket or truncate"),
            ("truncate(2, region)", "no bucket or truncate"),
            ("customer.tier", "top-level"),
            ("_timestamp", "day(_timestamp)"),
        ] {
            let refused = ok(value).expect_err(value);
            assert!(refused.contains(reason), "{value}: {refused}");
        }
        assert!(PartitionBy::parse("id").expect("parses").delta_refusal().is_none());
        assert!(PartitionBy::parse("bucket(2, id)").expect("parses").delta_refusal().is_some());
    }

    #[test]
    fn terms_parse_into_transforms_of_columns() {
        let parsed = PartitionBy::parse("day(_timestamp), bucket(16, id) ,customer.region,")
            .expect_err("a trailing comma is an empty term");
        assert!(parsed.contains("empty term"), "{parsed}");
        let parsed =
            PartitionBy::parse("day(_timestamp), bucket(16, id) ,customer.region").expect("valid");
        let fields: Vec<(String, Transform)> =
            parsed.fields().iter().map(|f| (f.column.clone(), f.transform)).collect();
        assert_eq!(
            fields,
            [
                ("_timestamp".to_owned(), Transform::Day),
                ("id".to_owned(), Transform::Bucket(16)),
                ("customer.region".to_owned(), Transform::Identity),
            ]
        );
        let names: Vec<String> = parsed.fields().iter().map(PartitionField::name).collect();
        assert_eq!(names, ["_timestamp_day", "id_bucket", "customer.region"]);
        assert_eq!(parsed.to_string(), "day(_timestamp), bucket(16, id), customer.region");
        assert_eq!(PartitionBy::parse(&parsed.to_string()), Ok(parsed));
        assert_eq!(PartitionBy::parse("  "), Ok(PartitionBy::default()));
        assert_eq!(
            PartitionBy::parse("HOURS(ts), truncate(4,name)").map(|p| p.to_string()),
            Ok("hour(ts), truncate(4, name)".to_owned())
        );
    }

    #[test]
    fn bad_terms_are_refused_with_a_reason() {
        let refused = |value: &str, reason: &str| {
            let message = PartitionBy::parse(value).expect_err(value);
            assert!(message.contains(reason), "{value}: {message}");
        };
        refused("day(ts", "'(' without ')'");
        refused("day(ts))", "')' without '('");
        refused("week(ts)", "unknown transform");
        refused("bucket(id)", "takes a number and a column");
        refused("bucket(0, id)", "not a positive number");
        refused("truncate(-1, id)", "not a positive number");
        refused("day(a, b)", "takes one column");
        refused("a b", "not a column name");
        refused("id, identity(id)", "given twice");
    }

    #[test]
    fn columns_are_checked_against_the_table() {
        let customer = Fields::from(vec![Field::new("region", DataType::Utf8, true)]);
        let schema = Schema::new(vec![
            Field::new("_timestamp", DataType::Timestamp(TimeUnit::Millisecond, None), false),
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Float64, true),
            Field::new("customer", DataType::Struct(customer.clone()), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
                true,
            ),
        ]);
        let check = |value: &str| PartitionBy::parse(value).expect(value).check(&schema);
        assert_eq!(
            check("day(_timestamp), hour(_timestamp), bucket(8, id), customer.region"),
            Ok(())
        );
        assert_eq!(check("truncate(10, id), price"), Ok(()));
        let refused = |value: &str, reason: &str| {
            let message = check(value).expect_err(value);
            assert!(message.contains(reason), "{value}: {message}");
        };
        refused("day(id)", "does not take");
        refused("bucket(4, price)", "does not take");
        refused("customer", "does not take");
        refused("tags", "does not take");
        refused("customer.city", "no column");
        refused("missing", "no column");
    }
}
