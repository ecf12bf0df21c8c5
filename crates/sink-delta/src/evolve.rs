//! Schema evolution: which columns of a file the table does not have yet.
//!
//! A table's schema only grows. A file whose columns the table already covers is committed as
//! is; otherwise its new top-level columns (made nullable: the table's older rows have no value
//! for them) and the columns whose nested types gained fields are handed to deltalake's
//! `add_columns`, which merges them into the table schema in a version of its own before the
//! data commit. Readers then see the new columns as null in older files.

use deltalake::kernel::{DataType, StructField, StructType};

/// The fields to merge into `table` so that it covers `file`; empty when it already does.
pub(crate) fn missing_fields(table: &StructType, file: &StructType) -> Vec<StructField> {
    file.fields()
        .filter_map(|field| match table.field(field.name()) {
            None => Some(StructField::new(field.name(), field.data_type().clone(), true)),
            Some(existing) if !field_covers(existing, field) => Some(field.clone()),
            Some(_) => None,
        })
        .collect()
}

/// Whether a table field can hold every value of a file field: same type (or a struct with at
/// least the file's fields), and null allowed if the file allows it.
fn field_covers(table: &StructField, file: &StructField) -> bool {
    (table.is_nullable() || !file.is_nullable()) && covers(table.data_type(), file.data_type())
}

fn covers(table: &DataType, file: &DataType) -> bool {
    match (table, file) {
        (DataType::Struct(table), DataType::Struct(file)) => file.fields().all(|field| {
            table.field(field.name()).is_some_and(|existing| field_covers(existing, field))
        }),
        (DataType::Array(table), DataType::Array(file)) => {
            (table.contains_null() || !file.contains_null())
                && covers(table.element_type(), file.element_type())
        }
        (DataType::Map(table), DataType::Map(file)) => {
            (table.value_contains_null() || !file.value_contains_null())
                && covers(table.key_type(), file.key_type())
                && covers(table.value_type(), file.value_type())
        }
        (table, file) => table == file,
    }
}

#[cfg(test)]
mod tests {
    use deltalake::kernel::{ArrayType, DataType, StructField, StructType};

    use super::missing_fields;

    fn schema(fields: Vec<StructField>) -> StructType {
        StructType::try_new(fields).expect("a schema")
    }

    #[test]
    fn a_covered_file_adds_nothing() {
        let table = schema(vec![
            StructField::new("id", DataType::LONG, false),
            StructField::new("tags", ArrayType::new(DataType::STRING, true), true),
        ]);
        let file = schema(vec![
            StructField::new("id", DataType::LONG, false),
            StructField::new("tags", ArrayType::new(DataType::STRING, false), false),
        ]);
        assert!(missing_fields(&table, &file).is_empty());
    }

    #[test]
    fn new_columns_are_added_nullable() {
        let table = schema(vec![StructField::new("id", DataType::LONG, false)]);
        let file = schema(vec![
            StructField::new("id", DataType::LONG, false),
            StructField::new("note", DataType::STRING, false),
        ]);
        let added = missing_fields(&table, &file);
        assert_eq!(added, vec![StructField::new("note", DataType::STRING, true)]);
    }

    #[test]
    fn a_struct_that_gained_a_field_is_merged() {
        let address = |fields| DataType::Struct(Box::new(schema(fields)));
        let table = schema(vec![StructField::new(
            "address",
            address(vec![StructField::new("zip", DataType::STRING, true)]),
            true,
        )]);
        let wider = address(vec![
            StructField::new("zip", DataType::STRING, true),
            StructField::new("city", DataType::STRING, true),
        ]);
        let file = schema(vec![StructField::new("address", wider.clone(), true)]);
        assert_eq!(missing_fields(&table, &file), vec![StructField::new("address", wider, true)]);
    }
}
