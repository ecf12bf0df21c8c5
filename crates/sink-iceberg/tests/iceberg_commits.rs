//! The Iceberg format against real catalogs (a SQLite file, a Postgres database) and real
//! locations (a directory, moto S3): commits appear once as snapshots, a second commit from the
//! same offset loses, a writer resumes from the table, partitions commit independently (also
//! at the same time), and a schema that gains columns evolves the table with its field ids
//! kept.

mod common;

use common::{file, PostgresCatalog, ORDER_V1, ORDER_V2_NESTED as ORDER_V2};
use iceberg::spec::Type;
use skiff_sink::table::{CommitOutcome, Location, Table};
use skiff_sink::testing::{self, commit};
use skiff_sink_iceberg::{summary_property, CatalogConfig, IcebergTable};

/// The table as iceberg loads it from the catalog.
async fn iceberg(location: &Location, catalog: &CatalogConfig) -> iceberg::table::Table {
    let table = IcebergTable::new(location, catalog, "orders").expect("table");
    table.iceberg_table().await.expect("loads").expect("a table")
}

/// Data files of the current snapshot, as iceberg's own scan plans them.
async fn data_files(table: &iceberg::table::Table) -> Vec<String> {
    paths(table, None).await
}

/// The paths of the files a scan with `filter` plans, sorted.
async fn paths(
    table: &iceberg::table::Table,
    filter: Option<iceberg::expr::Predicate>,
) -> Vec<String> {
    common::planned(table, filter).await.into_iter().map(|(path, _)| path).collect()
}

/// Opens fresh objects of the `orders` table, for the shared suite.
fn opener<'a>(
    location: &'a Location,
    catalog: &'a CatalogConfig,
) -> impl Fn() -> Box<dyn Table> + Sync + 'a {
    move || {
        Box::new(IcebergTable::new(location, catalog, "orders").expect("table")) as Box<dyn Table>
    }
}

async fn commits_once_and_resumes(location: Location, catalog: CatalogConfig) {
    testing::commits_once_and_resumes(&opener(&location, &catalog)).await;

    // Three snapshots, one per winning commit, each saying what it covers; three live files.
    let loaded = iceberg(&location, &catalog).await;
    let metadata = loaded.metadata();
    assert_eq!(metadata.snapshots().count(), 3);
    let current = metadata.current_snapshot().expect("current");
    assert_eq!(summary_property(current, "skiff.partition"), Some("2"));
    assert_eq!(summary_property(current, "skiff.from_offset"), Some("0"));
    assert_eq!(summary_property(current, "skiff.next_offset"), Some("1"));
    assert_eq!(summary_property(current, "skiff.topic_id"), Some("id-1"));
    let files = data_files(&loaded).await;
    assert_eq!(files.len(), 3, "{files:?}");
    let partition_3: Vec<&String> = files.iter().filter(|f| f.contains("/data/3/")).collect();
    assert_eq!(partition_3.len(), 2, "{files:?}");
    assert!(partition_3[1].contains("/data/3/00000000000000000003-"), "{files:?}");
}

#[tokio::test]
async fn a_local_table_in_a_sqlite_catalog_commits_once_and_resumes() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    commits_once_and_resumes(location, catalog).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test]
async fn an_s3_table_in_a_postgres_catalog_commits_once_and_resumes() {
    let postgres = PostgresCatalog::new().await;
    commits_once_and_resumes(common::s3(), postgres.config.clone()).await;
    postgres.drop_database().await;
}

/// Writers racing over one partition: one wins each round; writers of other partitions all
/// win after retries on the moved table.
async fn races(location: Location, catalog: CatalogConfig) {
    testing::races(&opener(&location, &catalog)).await;
    let loaded = iceberg(&location, &catalog).await;
    assert_eq!(data_files(&loaded).await.len(), 3 + 4, "one file per winning commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_commit_each_range_once_in_a_sqlite_catalog() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    races(location, catalog).await;
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_commit_each_range_once_in_a_postgres_catalog_on_s3() {
    let postgres = PostgresCatalog::new().await;
    races(common::s3(), postgres.config.clone()).await;
    postgres.drop_database().await;
}

/// A file with new columns (a top-level one and one inside a struct) adds them; the columns the
/// table had keep their field ids.
#[tokio::test]
async fn a_schema_that_gains_columns_evolves_the_table() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    let table = IcebergTable::new(&location, &catalog, "orders").expect("table");
    let first = file(ORDER_V1, 0, 0, 2, &[0, 1]);
    assert_eq!(commit(&table, 0, 0, 2, &first).await, CommitOutcome::Committed);
    let before = iceberg(&location, &catalog).await.metadata().current_schema().clone();
    assert!(before.field_by_name("note").is_none());

    let second = file(ORDER_V2, 0, 2, 4, &[2, 3]);
    assert_eq!(commit(&table, 0, 2, 4, &second).await, CommitOutcome::Committed);
    let loaded = iceberg(&location, &catalog).await;
    let after = loaded.metadata().current_schema();
    for name in ["_offset", "id", "customer", "customer.name", "tags", "attributes"] {
        let (old, new) = (before.field_by_name(name), after.field_by_name(name));
        assert_eq!(old.map(|f| f.id), new.map(|f| f.id), "{name} keeps its id");
    }
    let note = after.field_by_name("note").expect("note added");
    assert!(!note.required, "added columns are optional");
    assert!(matches!(note.field_type.as_ref(), Type::Primitive(_)));
    assert!(after.field_by_name("customer.email").is_some(), "a nested field is added too");
    assert!(note.id > before.highest_field_id(), "a new column gets a new id");
    assert_eq!(loaded.metadata().schemas_iter().count(), 2);

    // A file of the old schema after the change still commits (its missing columns are null).
    let third = file(ORDER_V1, 0, 4, 5, &[4]);
    assert_eq!(commit(&table, 0, 4, 5, &third).await, CommitOutcome::Committed);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// One partition's commit adds columns while others append at the same time: the appends that
/// lose to the schema update try again on the new table, and every commit lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_go_through_a_concurrent_schema_change() {
    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    testing::appends_go_through_a_concurrent_schema_change(&opener(&location, &catalog)).await;
    let loaded = iceberg(&location, &catalog).await;
    assert!(loaded.metadata().current_schema().field_by_name("note").is_some());
    assert_eq!(data_files(&loaded).await.len(), 5);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

/// Data files carry column statistics (iceberg's Parquet writer writes them): a scan filtering
/// on `_offset` skips the files whose bounds exclude it, on an unpartitioned table.
#[tokio::test]
async fn column_statistics_let_scans_skip_files() {
    use iceberg::expr::Reference;
    use iceberg::spec::Datum;

    let (dir, location) = common::local();
    let (_, catalog) = common::sqlite_catalog(&dir);
    let table = IcebergTable::new(&location, &catalog, "orders").expect("table");
    for (from, next) in [(0, 10), (10, 20), (20, 30)] {
        let offsets: Vec<i64> = (from..next).collect();
        let rows = file(ORDER_V1, 0, from, next, &offsets);
        assert_eq!(commit(&table, 0, from, next, &rows).await, CommitOutcome::Committed);
    }
    let loaded = iceberg(&location, &catalog).await;
    assert_eq!(data_files(&loaded).await.len(), 3);
    let late =
        paths(&loaded, Some(Reference::new("_offset").greater_than_or_equal_to(Datum::long(25))))
            .await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains("/data/0/00000000000000000020-"), "{late:?}");
    let middle = paths(&loaded, Some(Reference::new("id").equal_to(Datum::long(15)))).await;
    assert_eq!(middle.len(), 1, "{middle:?}");
    assert!(middle[0].contains("/data/0/00000000000000000010-"), "{middle:?}");
    let none = paths(&loaded, Some(Reference::new("_offset").greater_than(Datum::long(100)))).await;
    assert_eq!(none, Vec::<String>::new());
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
