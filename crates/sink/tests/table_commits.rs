//! The `parquet` table format against a real directory and a real S3 server (moto, started by
//! `scripts/services.sh`, named in `SKIFF_TEST_S3_ENDPOINT`): commits appear once, a second
//! commit from the same offset loses, and a writer resumes from what the files say.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use skiff_schema::{Schema, SchemaType};
use skiff_sink::parquet::{write_with_metadata, ParquetFile};
use skiff_sink::table::parquet_table::{file_facts, file_name};
use skiff_sink::table::{
    metadata, Commit, CommitFacts, CommitOutcome, Location, ParquetTable, Table,
};
use skiff_sink::{Rows, TableSchema};

/// A file of one Avro order per offset in `offsets` of partition 3, covering `from..next`.
fn file(from: i64, next: i64, offsets: &[i64]) -> ParquetFile {
    let schema = Schema::parse(SchemaType::Avro, common::AVRO_ORDER, &[]).expect("parses");
    let [full, _] = common::avro_orders(&schema);
    let table = TableSchema::new(Arc::new(schema), &[]).expect("columns");
    let mut rows = Rows::new(&table).expect("rows");
    for offset in offsets {
        rows.push(3, *offset, 1_700_000_000_000, None, &[], &full).expect("fits");
    }
    let batch = rows.finish().expect("batch");
    let facts = CommitFacts {
        topic: "orders".to_owned(),
        topic_id: "id-1".to_owned(),
        partition: 3,
        from,
        next,
        schema_id: 7,
        committed_at_ms: 1_700_000_000_999,
    };
    write_with_metadata(&table.arrow_schema(), &[batch], &facts.to_metadata()).expect("written")
}

async fn commits_once_and_resumes(location: Location) {
    let table = ParquetTable::new(location.clone(), "orders");
    assert_eq!(table.committed(3).await.expect("read"), None, "a new table has no commits");

    let first = file(0, 3, &[0, 1, 2]);
    let outcome = table.commit(Commit { partition: 3, from: 0, next: 3, file: &first }).await;
    assert_eq!(outcome.expect("commit"), CommitOutcome::Committed);
    let committed = table.committed(3).await.expect("read").expect("one commit");
    assert_eq!((committed.next_offset, committed.committed_at_ms), (3, 1_700_000_000_999));
    assert_eq!(committed.topic_id, "id-1");

    // A stale writer that also resumed from offset 0 loses and writes nothing.
    let stale = file(0, 5, &[0, 1, 2, 3, 4]);
    let outcome = table.commit(Commit { partition: 3, from: 0, next: 5, file: &stale }).await;
    assert_eq!(outcome.expect("commit"), CommitOutcome::Conflict);

    let second = file(3, 9, &[4, 8]);
    let outcome = table.commit(Commit { partition: 3, from: 3, next: 9, file: &second }).await;
    assert_eq!(outcome.expect("commit"), CommitOutcome::Committed);

    // A fresh table object (another broker) resumes from the files alone.
    let other = ParquetTable::new(location.clone(), "orders");
    assert_eq!(other.committed(3).await.expect("read").map(|c| c.next_offset), Some(9));
    assert_eq!(other.committed(2).await.expect("read"), None, "partitions are separate");

    // The committed files are the ones written, named by their first offset.
    let store = location.store();
    let read = |from: i64| {
        let path = location.path(&["orders", "3", &file_name(from)]);
        async move { store.get(&path).await.expect("file").bytes().await.expect("bytes") }
    };
    let bytes: Bytes = read(0).await;
    assert_eq!(
        bytes.as_ref(),
        first.bytes.as_slice(),
        "the first writer's file, not the stale one"
    );
    let facts = file_facts(&read(3).await).expect("footer");
    assert_eq!(facts.get(metadata::FROM_OFFSET).map(String::as_str), Some("3"));
    assert_eq!(facts.get(metadata::NEXT_OFFSET).map(String::as_str), Some("9"));
    assert_eq!(facts.get(metadata::SCHEMA_ID).map(String::as_str), Some("7"));

    // A hint that fell behind (its write lost, or overtaken) only makes resuming list more.
    let hint = location.path(&["orders", "_skiff", "3.last"]);
    store.put(&hint, Bytes::from(file_name(0)).into()).await.expect("hint");
    assert_eq!(other.committed(3).await.expect("read").map(|c| c.next_offset), Some(9));
    store.delete(&hint).await.expect("hint deleted");
    assert_eq!(other.committed(3).await.expect("read").map(|c| c.next_offset), Some(9));
}

#[tokio::test]
async fn a_local_directory_table_commits_once_and_resumes() {
    let dir = std::env::temp_dir().join(format!("skiff-table-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("file://{}", dir.display());
    let location = Location::open(&url).expect("a directory location");
    commits_once_and_resumes(location).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn an_s3_table_commits_once_and_resumes() {
    let endpoint = std::env::var("SKIFF_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("SKIFF_TEST_S3_ENDPOINT is not set: run `eval \"$(scripts/services.sh)\"` first")
    });
    let prefix = uuid::Uuid::new_v4().simple();
    let url = format!("s3://skiff-test/tables-{prefix}?endpoint={endpoint}");
    commits_once_and_resumes(Location::open(&url).expect("an s3 location")).await;
}

#[test]
fn locations_are_checked() {
    assert!(Location::check("file:///var/lib/tables").is_ok());
    assert!(Location::check("s3://bucket/prefix").is_ok());
    assert!(Location::check("file://relative/dir").is_err());
    assert!(Location::check("s3:///no-bucket").is_err());
    assert!(Location::check("/just/a/path").is_err());
    assert!(Location::check("gs://bucket").is_err());
}
