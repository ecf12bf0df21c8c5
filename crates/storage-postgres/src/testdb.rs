//! A fresh Postgres database per test.
//!
//! Tests reach the server named by `SKIFF_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, the maintenance database; `scripts/services.sh`
//! makes sure one answers), create `skiff_test_<random>` there and drop it (`WITH (FORCE)`) when
//! the engine using it is dropped.

use std::sync::Arc;

use skiff_storage::Storage;
use url::Url;

use crate::options::Options;
use crate::{tls, PostgresEngine};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The maintenance database's URL.
pub(crate) fn admin_url() -> String {
    std::env::var("SKIFF_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A connection to the database `url` names, outside any engine.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let options = Options::parse(url).expect("test url parses");
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
        tls::client_config(&options.tls).expect("tls config"),
    );
    let (client, connection) = options.postgres.connect(tls).await.unwrap_or_else(|error| {
        panic!("cannot reach the test postgres at {url} (run scripts/services.sh): {error}")
    });
    tokio::spawn(connection);
    client
}

/// A database that exists as long as this value.
pub(crate) struct TestDatabase {
    name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    pub(crate) async fn create() -> Self {
        let admin = admin_url();
        let name = format!("skiff_test_{}", uuid::Uuid::new_v4().simple());
        connect(&admin)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let mut url = Url::parse(&admin).expect("admin url parses");
        url.set_path(&name);
        Self { name, url: url.to_string() }
    }

    /// An engine on this database, which it does not own.
    pub(crate) fn engine(&self) -> Arc<PostgresEngine> {
        Arc::new(PostgresEngine::new(&self.url).expect("engine opens"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = connect(&admin_url()).await;
                client.batch_execute(&statement).await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// A `Storage` on a fresh database that is dropped with it.
pub(crate) async fn fresh_storage() -> Storage {
    let database = TestDatabase::create().await;
    let mut engine = PostgresEngine::new(&database.url).expect("engine opens");
    engine.test_database = Some(database);
    Arc::new(engine).into_storage()
}
