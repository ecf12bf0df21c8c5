//! The catalog's two tables in a SQL database, in the layout of Iceberg's JDBC catalog that
//! pyiceberg's `SqlCatalog` also reads and writes:
//!
//! ```sql
//! iceberg_tables (catalog_name, table_namespace, table_name, metadata_location,
//!                 previous_metadata_location)          -- one row per table
//! iceberg_namespace_properties (catalog_name, namespace, property_key, property_value)
//! ```
//!
//! A commit is one conditional `UPDATE ... WHERE metadata_location = <the one it read>`: the
//! pointer swap that makes an Iceberg commit atomic. SQLite is reached through rusqlite on a
//! blocking thread, Postgres through tokio-postgres; both are the databases the storage
//! engines already use, so the catalog needs no server of its own. A Postgres catalog connects
//! with the storage engine's own [`Connector`]: the same URL options (`sslmode`,
//! `sslrootcert`, `sslcert`, `sslkey`), TLS and host name resolution as the storage.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::OptionalExtension;
use skiff_sink::SinkError;
use skiff_storage_postgres::Connector;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard, OnceCell};

const CREATE_TABLES: &str = "CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
)";

const CREATE_NAMESPACES: &str = "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key)
)";

/// How long a SQLite catalog waits for another connection's write lock (the broker's own
/// storage may share the file).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One table's row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableKey<'a> {
    pub(crate) catalog: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) table: &'a str,
}

/// A catalog database.
#[derive(Clone)]
pub(crate) struct Db {
    kind: Arc<Kind>,
    schema: Arc<OnceCell<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind.as_ref() {
            Kind::Sqlite { path, .. } => format!("sqlite {}", path.display()),
            Kind::Postgres { .. } => "postgres".to_owned(),
        };
        f.debug_struct("Db").field("kind", &kind).finish()
    }
}

enum Kind {
    Sqlite { path: PathBuf, conn: Mutex<Option<rusqlite::Connection>> },
    Postgres { connector: Box<Connector>, client: AsyncMutex<Option<tokio_postgres::Client>> },
}

impl Db {
    /// The database a catalog URL names: `sqlite://path` (relative or `sqlite:///absolute`)
    /// or `postgres://...` / `postgresql://...`. Nothing is opened yet.
    pub(crate) fn parse(url: &str) -> Result<Db, SinkError> {
        let kind = match url.split_once("://") {
            Some(("sqlite", rest)) => {
                let path = rest.split('?').next().unwrap_or(rest);
                if path.is_empty() {
                    return Err(invalid(url, "sqlite:// needs a file path"));
                }
                Kind::Sqlite { path: PathBuf::from(path), conn: Mutex::new(None) }
            }
            Some(("postgres" | "postgresql", _)) => Kind::Postgres {
                connector: Box::new(
                    Connector::new(url, "skiff-iceberg-catalog")
                        .map_err(|error| invalid(url, &error.to_string()))?,
                ),
                client: AsyncMutex::new(None),
            },
            _ => return Err(invalid(url, "use sqlite://path or postgres://...")),
        };
        Ok(Db { kind: Arc::new(kind), schema: Arc::new(OnceCell::new()) })
    }

    /// The table's current metadata location, or `None` if the catalog has no such table.
    pub(crate) async fn metadata_location(
        &self,
        key: TableKey<'_>,
    ) -> Result<Option<String>, SinkError> {
        self.ready().await?;
        let sql = "SELECT metadata_location FROM iceberg_tables \
                   WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3";
        let args = [key.catalog, key.namespace, key.table].map(str::to_owned);
        match self.kind.as_ref() {
            Kind::Sqlite { .. } => {
                let sql = sqlite_sql(sql);
                self.sqlite(move |conn| {
                    conn.query_row(&sql, rusqlite::params_from_iter(args.iter()), |row| {
                        row.get::<_, Option<String>>(0)
                    })
                    .optional()
                    .map(Option::flatten)
                })
                .await
            }
            Kind::Postgres { .. } => {
                let client = self.postgres().await?;
                let rows = postgres_client(&client)?
                    .query(sql, &[&args[0], &args[1], &args[2]])
                    .await
                    .map_err(postgres_error)?;
                Ok(rows.first().and_then(|row| row.get::<_, Option<String>>(0)))
            }
        }
    }

    /// Adds the table with its first metadata location; `false` if it exists already.
    pub(crate) async fn insert_table(
        &self,
        key: TableKey<'_>,
        location: &str,
    ) -> Result<bool, SinkError> {
        self.ready().await?;
        let sql = "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                   metadata_location, previous_metadata_location) VALUES ($1, $2, $3, $4, NULL) \
                   ON CONFLICT DO NOTHING";
        self.execute(sql, [key.catalog, key.namespace, key.table, location]).await.map(|n| n == 1)
    }

    /// Points the table at `new` if it still points at `old`; `false` if another commit moved
    /// it first.
    pub(crate) async fn swap(
        &self,
        key: TableKey<'_>,
        old: &str,
        new: &str,
    ) -> Result<bool, SinkError> {
        self.ready().await?;
        let sql =
            "UPDATE iceberg_tables SET metadata_location = $1, previous_metadata_location = $2 \
                   WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5 \
                   AND metadata_location = $2";
        self.execute(sql, [new, old, key.catalog, key.namespace, key.table]).await.map(|n| n == 1)
    }

    /// Records a namespace (pyiceberg's way: a property `exists` = `true`); nothing if it is
    /// there already.
    pub(crate) async fn create_namespace(
        &self,
        catalog: &str,
        namespace: &str,
    ) -> Result<(), SinkError> {
        self.ready().await?;
        let sql = "INSERT INTO iceberg_namespace_properties \
                   (catalog_name, namespace, property_key, property_value) \
                   VALUES ($1, $2, 'exists', 'true') ON CONFLICT DO NOTHING";
        self.execute(sql, [catalog, namespace]).await.map(|_| ())
    }

    /// Whether a namespace has properties or tables.
    pub(crate) async fn namespace_exists(
        &self,
        catalog: &str,
        namespace: &str,
    ) -> Result<bool, SinkError> {
        self.ready().await?;
        let sql = "SELECT 1 FROM iceberg_namespace_properties \
                   WHERE catalog_name = $1 AND namespace = $2 \
                   UNION ALL SELECT 1 FROM iceberg_tables \
                   WHERE catalog_name = $1 AND table_namespace = $2";
        let args = [catalog, namespace].map(str::to_owned);
        match self.kind.as_ref() {
            Kind::Sqlite { .. } => {
                let sql = sqlite_sql(sql);
                self.sqlite(move |conn| {
                    let mut statement = conn.prepare(&sql)?;
                    statement.exists(rusqlite::params_from_iter(args.iter()))
                })
                .await
            }
            Kind::Postgres { .. } => {
                let client = self.postgres().await?;
                let rows = postgres_client(&client)?
                    .query(sql, &[&args[0], &args[1]])
                    .await
                    .map_err(postgres_error)?;
                Ok(!rows.is_empty())
            }
        }
    }

    /// Creates the two tables once per process (pyiceberg creates them the same way, so
    /// whoever comes first makes them).
    async fn ready(&self) -> Result<(), SinkError> {
        self.schema
            .get_or_try_init(|| async {
                for sql in [CREATE_TABLES, CREATE_NAMESPACES] {
                    self.execute(sql, std::iter::empty::<&str>()).await?;
                }
                Ok::<(), SinkError>(())
            })
            .await
            .map(|_| ())
    }

    /// Runs one statement with text arguments; the number of rows it changed.
    async fn execute<'a>(
        &self,
        sql: &'static str,
        args: impl IntoIterator<Item = &'a str>,
    ) -> Result<u64, SinkError> {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        match self.kind.as_ref() {
            Kind::Sqlite { .. } => {
                let sql = sqlite_sql(sql);
                self.sqlite(move |conn| {
                    conn.execute(&sql, rusqlite::params_from_iter(args.iter())).map(|n| n as u64)
                })
                .await
            }
            Kind::Postgres { .. } => {
                let client = self.postgres().await?;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    args.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                postgres_client(&client)?.execute(sql, &params).await.map_err(postgres_error)
            }
        }
    }

    /// Runs `work` on the SQLite connection (opened on first use) on a blocking thread.
    async fn sqlite<T: Send + 'static>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SinkError> {
        let kind = self.kind.clone();
        tokio::task::spawn_blocking(move || {
            let Kind::Sqlite { path, conn } = kind.as_ref() else {
                return Err(SinkError::Store("not a sqlite catalog".into()));
            };
            let mut guard =
                conn.lock().map_err(|_| SinkError::Store("sqlite catalog lock poisoned".into()))?;
            if guard.is_none() {
                let opened = rusqlite::Connection::open(path).map_err(sqlite_error)?;
                opened.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(sqlite_error)?;
                *guard = Some(opened);
            }
            let result = match guard.as_ref() {
                Some(connection) => work(connection).map_err(sqlite_error),
                None => Err(SinkError::Store("sqlite catalog not open".into())),
            };
            if result.is_err() {
                // A broken connection is not kept: the next call opens a fresh one.
                *guard = None;
            }
            result
        })
        .await
        .map_err(|e| SinkError::Store(format!("sqlite catalog task: {e}")))?
    }

    /// The Postgres connection, made on first use and again after it broke. Calls hold it in
    /// turn: the catalog makes a few small queries per commit.
    async fn postgres(
        &self,
    ) -> Result<AsyncMutexGuard<'_, Option<tokio_postgres::Client>>, SinkError> {
        let Kind::Postgres { connector, client } = self.kind.as_ref() else {
            return Err(SinkError::Store("not a postgres catalog".into()));
        };
        let mut guard = client.lock().await;
        if guard.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            *guard = Some(connector.connect().await.map_err(postgres_error)?);
        }
        Ok(guard)
    }
}

/// The client a [`Db::postgres`] guard holds.
fn postgres_client(
    guard: &Option<tokio_postgres::Client>,
) -> Result<&tokio_postgres::Client, SinkError> {
    guard.as_ref().ok_or_else(|| SinkError::Store("postgres catalog not connected".into()))
}

/// `$1` placeholders as SQLite's `?1`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn invalid(url: &str, reason: &str) -> SinkError {
    SinkError::Location(format!("iceberg catalog {url:?}: {reason}"))
}

fn sqlite_error(error: rusqlite::Error) -> SinkError {
    SinkError::Store(format!("iceberg catalog (sqlite): {error}"))
}

fn postgres_error(error: tokio_postgres::Error) -> SinkError {
    SinkError::Store(format!("iceberg catalog (postgres): {error}"))
}
