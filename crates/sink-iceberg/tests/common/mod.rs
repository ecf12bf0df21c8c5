//! Shared by the integration tests: skiff-sink's table test kit, named for Iceberg, and
//! catalogs (a SQLite file, a fresh Postgres database).

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::path::PathBuf;

use skiff_sink::table::Location;
pub use skiff_sink::testing::{order_file as file, venv_python, ORDER_V1};
use skiff_sink_iceberg::CatalogConfig;

/// Orders, version 2 for Iceberg: a top-level `note` and a nested `customer.email` added.
pub const ORDER_V2_NESTED: &str = r#"{
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "customer": {"type": "object", "properties": {"name": {"type": "string"}, "email": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "attributes": {"type": "object", "additionalProperties": {"type": "integer"}},
    "note": {"type": "string"}
  },
  "required": ["id"]
}"#;

/// A new temporary directory and its `file://` location.
pub fn local() -> (PathBuf, Location) {
    skiff_sink::testing::local_location("iceberg")
}

/// A new prefix of the moto bucket as a location.
pub fn s3() -> Location {
    skiff_sink::testing::s3_location("iceberg")
}

/// A SQLite catalog in `dir` (its URL and config).
pub fn sqlite_catalog(dir: &std::path::Path) -> (String, CatalogConfig) {
    std::fs::create_dir_all(dir).expect("directory");
    let url = format!("sqlite://{}", dir.join("catalog.db").display());
    let config = CatalogConfig::parse(&url).expect("a catalog URL");
    (url, config)
}

/// A fresh Postgres database, dropped when the value goes.
pub struct PostgresCatalog {
    pub url: String,
    pub config: CatalogConfig,
    server: String,
    name: String,
}

impl PostgresCatalog {
    pub async fn new() -> PostgresCatalog {
        let server = std::env::var("SKIFF_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "SKIFF_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/services.sh)\"` first"
            )
        });
        let name = format!("skiff_iceberg_{}", uuid::Uuid::new_v4().simple());
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        let url = database_url(&server, &name);
        let config = CatalogConfig::parse(&url).expect("a catalog URL");
        PostgresCatalog { url, config, server, name }
    }

    /// Drops the database (tests call it at their end; a failed test leaves it for inspection).
    pub async fn drop_database(self) {
        admin(&self.server, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}

/// `server` (a `postgres://` URL) with its database replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

async fn admin(server: &str, sql: &str) {
    let (client, connection) =
        tokio_postgres::connect(server, tokio_postgres::NoTls).await.expect("postgres answers");
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

/// The files a scan with `filter` (none: all) plans, as (path, rows) sorted by path.
pub async fn planned(
    table: &iceberg::table::Table,
    filter: Option<iceberg::expr::Predicate>,
) -> Vec<(String, u64)> {
    use futures::TryStreamExt;
    let mut scan = table.scan().select_all();
    if let Some(filter) = filter {
        scan = scan.with_filter(filter);
    }
    let tasks: Vec<_> = scan
        .build()
        .expect("a scan")
        .plan_files()
        .await
        .expect("planned")
        .try_collect()
        .await
        .expect("tasks");
    let mut files: Vec<(String, u64)> = tasks
        .iter()
        .map(|task| (task.data_file_path().to_owned(), task.record_count.unwrap_or_default()))
        .collect();
    files.sort();
    files
}
