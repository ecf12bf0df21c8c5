//! A SQL catalog (Iceberg's JDBC layout, as pyiceberg's `SqlCatalog` reads it) over the
//! broker's own SQLite or Postgres database, as an [`iceberg::Catalog`]: what iceberg's
//! transactions commit through.
//!
//! Only what a table writer needs is implemented: namespaces are created and checked, tables
//! created, loaded and committed. Listing, renaming and dropping are left to the tools people
//! already use on a catalog (pyiceberg, Spark), and answer `FeatureUnsupported` here.
//!
//! A commit that finds the table moved on (another writer committed first) fails with
//! `CatalogCommitConflicts` *without* iceberg's retryable flag: iceberg's retry would rebase the
//! append on the newer table blindly, and only the caller knows whether the rows it appends are
//! still due (the exactly-once check in [`crate::table`]). For the same reason a catalog may be
//! pinned to the metadata location the caller checked ([`SqlCatalog::pinned_to`]): iceberg
//! reloads the table before it commits and would otherwise build on whatever it finds.

mod db;

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, TableCommit,
    TableCreation, TableIdent,
};
use skiff_sink::SinkError;

pub(crate) use db::Db;
use db::TableKey;

/// The catalog name rows are filed under unless the catalog URL says otherwise (`?catalog=`);
/// pyiceberg's `SqlCatalog(name, ...)` must be given the same name.
pub const DEFAULT_CATALOG_NAME: &str = "skiff";
/// The namespace topics' tables go in unless the catalog URL says otherwise (`?namespace=`).
pub const DEFAULT_NAMESPACE: &str = "skiff";

/// Where tables are registered: a database, a catalog name and a namespace, from a catalog URL
/// such as `sqlite:///var/lib/skiff/catalog.db` or `postgres://host/db?namespace=kafka`.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub(crate) db: Db,
    pub(crate) name: String,
    pub(crate) namespace: String,
}

impl CatalogConfig {
    /// Parses a catalog URL; `catalog` and `namespace` query parameters are this crate's, the
    /// rest go to the database.
    pub fn parse(url: &str) -> std::result::Result<CatalogConfig, SinkError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut name = DEFAULT_CATALOG_NAME.to_owned();
        let mut namespace = DEFAULT_NAMESPACE.to_owned();
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("catalog", value)) if !value.is_empty() => name = value.to_owned(),
                Some(("namespace", value)) if !value.is_empty() => namespace = value.to_owned(),
                _ => rest.push(pair),
            }
        }
        let db_url =
            if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
        Ok(CatalogConfig { db: Db::parse(&db_url)?, name, namespace })
    }

    /// The namespace tables are created in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The catalog name rows are filed under.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The catalog as iceberg sees it, with the file IO of one table location.
#[derive(Debug, Clone)]
pub(crate) struct SqlCatalog {
    config: CatalogConfig,
    file_io: FileIO,
    /// The only metadata location a commit may build on, if set.
    pinned: Option<String>,
}

impl SqlCatalog {
    pub(crate) fn new(config: CatalogConfig, file_io: FileIO) -> SqlCatalog {
        SqlCatalog { config, file_io, pinned: None }
    }

    /// The file IO tables of this catalog are read and written with.
    pub(crate) fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// This catalog, committing only on top of the table at `metadata_location`: any other
    /// base is a conflict.
    pub(crate) fn pinned_to(&self, metadata_location: &str) -> SqlCatalog {
        SqlCatalog { pinned: Some(metadata_location.to_owned()), ..self.clone() }
    }

    /// [`Catalog::update_table`]'s work; every error it returns is final for iceberg.
    async fn commit_once(&self, commit: TableCommit) -> Result<Table> {
        let ident = commit.identifier().clone();
        let current = self.load_table(&ident).await?;
        let old_location = current.metadata_location_result()?.to_owned();
        if self.pinned.as_ref().is_some_and(|pinned| *pinned != old_location) {
            return Err(conflict(&ident));
        }
        let staged = commit.apply(current)?;
        let new_location = MetadataLocation::from_str(staged.metadata_location_result()?)?;
        self.swap(&ident, &old_location, staged.metadata(), new_location).await
    }

    /// Makes `base`'s next version the one `edit` builds from its metadata, if the table is
    /// still at `base`: the new table, or `None` if another writer moved it first. For the
    /// changes iceberg has no transaction action for (a new partition spec).
    pub(crate) async fn edit(
        &self,
        base: &Table,
        edit: impl FnOnce(TableMetadataBuilder) -> Result<TableMetadataBuilder>,
    ) -> Result<Option<Table>> {
        let old_location = base.metadata_location_result()?.to_owned();
        let builder = base.metadata().clone().into_builder(Some(old_location.clone()));
        let metadata = edit(builder)?.build()?.metadata;
        let new_location = MetadataLocation::from_str(&old_location)?
            .with_next_version()
            .with_new_metadata(&metadata);
        match self.swap(base.identifier(), &old_location, &metadata, new_location).await {
            Ok(table) => Ok(Some(table)),
            Err(error) if error.kind() == ErrorKind::CatalogCommitConflicts => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes the next metadata file and points the catalog at it if it still points at
    /// `old_location`.
    async fn swap(
        &self,
        ident: &TableIdent,
        old_location: &str,
        metadata: &TableMetadata,
        new_location: MetadataLocation,
    ) -> Result<Table> {
        metadata.write_to(&self.file_io, &new_location).await?;
        let new_location = new_location.to_string();
        let namespace = namespace_name(ident.namespace());
        let swapped = self
            .config
            .db
            .swap(self.key(&namespace, ident.name()), old_location, &new_location)
            .await
            .map_err(sink_error)?;
        if !swapped {
            // The metadata file just written is referenced by nothing.
            return Err(conflict(ident));
        }
        self.table_at(ident, &new_location).await
    }

    fn key<'a>(&'a self, namespace: &'a str, table: &'a str) -> TableKey<'a> {
        TableKey { catalog: &self.config.name, namespace, table }
    }

    /// The table's current metadata location in the catalog, if it has the table.
    async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        let namespace = namespace_name(ident.namespace());
        let key = self.key(&namespace, ident.name());
        self.config.db.metadata_location(key).await.map_err(sink_error)
    }

    /// The table at `metadata_location`.
    async fn table_at(&self, ident: &TableIdent, metadata_location: &str) -> Result<Table> {
        let metadata = TableMetadata::read_from(&self.file_io, metadata_location).await?;
        Table::builder()
            .identifier(ident.clone())
            .metadata(metadata)
            .metadata_location(metadata_location.to_owned())
            .file_io(self.file_io.clone())
            .runtime(iceberg::Runtime::current())
            .build()
    }
}

/// A namespace's name in the catalog tables: its levels joined with dots.
fn namespace_name(namespace: &NamespaceIdent) -> String {
    namespace.join(".")
}

fn sink_error(error: SinkError) -> Error {
    Error::new(ErrorKind::Unexpected, error.to_string())
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::FeatureUnsupported,
        format!("{what} is not done by Skiff's table writer; use pyiceberg or Spark"),
    )
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn list_namespaces(&self, _: Option<&NamespaceIdent>) -> Result<Vec<NamespaceIdent>> {
        Err(unsupported("listing namespaces"))
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        _properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        let name = namespace_name(namespace);
        self.config.db.create_namespace(&self.config.name, &name).await.map_err(sink_error)?;
        Ok(Namespace::new(namespace.clone()))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        if self.namespace_exists(namespace).await? {
            Ok(Namespace::new(namespace.clone()))
        } else {
            Err(Error::new(ErrorKind::NamespaceNotFound, namespace_name(namespace)))
        }
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        let name = namespace_name(namespace);
        self.config.db.namespace_exists(&self.config.name, &name).await.map_err(sink_error)
    }

    async fn update_namespace(&self, _: &NamespaceIdent, _: HashMap<String, String>) -> Result<()> {
        Err(unsupported("updating a namespace"))
    }

    async fn drop_namespace(&self, _: &NamespaceIdent) -> Result<()> {
        Err(unsupported("dropping a namespace"))
    }

    async fn list_tables(&self, _: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        Err(unsupported("listing tables"))
    }

    /// Writes the first metadata file, then adds the row; a table another writer created
    /// first is `TableAlreadyExists` (its metadata file is left unused).
    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let Some(location) = creation.location.clone() else {
            return Err(Error::new(ErrorKind::DataInvalid, "a table needs a location"));
        };
        let metadata = TableMetadataBuilder::from_table_creation(creation)?.build()?.metadata;
        let metadata_location = MetadataLocation::new_with_metadata(location, &metadata);
        metadata.write_to(&self.file_io, &metadata_location).await?;
        let metadata_location = metadata_location.to_string();
        let namespace_name = namespace_name(namespace);
        let inserted = self
            .config
            .db
            .insert_table(self.key(&namespace_name, ident.name()), &metadata_location)
            .await
            .map_err(sink_error)?;
        if !inserted {
            return Err(Error::new(ErrorKind::TableAlreadyExists, ident.to_string()));
        }
        self.table_at(&ident, &metadata_location).await
    }

    async fn load_table(&self, ident: &TableIdent) -> Result<Table> {
        let location = self
            .metadata_location(ident)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::TableNotFound, ident.to_string()))?;
        self.table_at(ident, &location).await
    }

    async fn drop_table(&self, _: &TableIdent) -> Result<()> {
        Err(unsupported("dropping a table"))
    }

    async fn purge_table(&self, _: &TableIdent) -> Result<()> {
        Err(unsupported("purging a table"))
    }

    async fn table_exists(&self, ident: &TableIdent) -> Result<bool> {
        Ok(self.metadata_location(ident).await?.is_some())
    }

    async fn rename_table(&self, _: &TableIdent, _: &TableIdent) -> Result<()> {
        Err(unsupported("renaming a table"))
    }

    async fn register_table(&self, _: &TableIdent, _: String) -> Result<Table> {
        Err(unsupported("registering a table"))
    }

    /// Applies the commit to the table as the catalog has it now (its requirements checked
    /// there), writes the next metadata file, and swaps the pointer if nobody else did first.
    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        self.commit_once(commit).await.map_err(|error| error.with_retryable(false))
    }
}

/// Another writer committed first.
fn conflict(ident: &TableIdent) -> Error {
    Error::new(
        ErrorKind::CatalogCommitConflicts,
        format!("{ident} was committed by another writer first"),
    )
}
