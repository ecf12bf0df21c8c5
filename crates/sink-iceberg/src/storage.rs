//! Iceberg's file IO over the table location's object store.
//!
//! iceberg 0.10 reads and writes through a [`Storage`] it is given, and skiff-sink already has
//! an object store for every location (`file:///`, `s3://` with the S3 engine's client and
//! `AWS_*` environment). So metadata, manifests and data files all go through that one store:
//! one S3 client, configured once, for every table format.
//!
//! Iceberg hands over absolute URLs (`s3://bucket/key`, `file:///dir/file`). An `s3://`
//! location's store is the bucket's, so the key is the URL's path; a `file://` location gets a
//! store of the whole file system (as for Delta), so the path is the URL's path too.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use skiff_sink::table::Location;
use skiff_sink::SinkError;

/// The object store a table location's URLs resolve against, and the URL of the tables' root.
#[derive(Clone)]
pub(crate) struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket` or `file://`: what a path is appended to for a URL.
    scheme_and_authority: String,
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage").field("root", &self.scheme_and_authority).finish()
    }
}

impl ObjectStorage {
    /// The storage of `location`, and the URL of `topic`'s table under it.
    pub(crate) fn for_table(
        location: &Location,
        topic: &str,
    ) -> std::result::Result<(ObjectStorage, String), SinkError> {
        let table = location.path(&[topic]);
        let url = location.url();
        match url.split_once("://") {
            Some(("file", rest)) => {
                let dir = rest.split('?').next().unwrap_or(rest).trim_end_matches('/');
                let storage = ObjectStorage {
                    store: Arc::new(LocalFileSystem::new()),
                    scheme_and_authority: "file://".into(),
                };
                Ok((storage, format!("file://{dir}/{table}")))
            }
            Some(("s3", rest)) => {
                let bucket = rest.split(['/', '?']).next().unwrap_or_default();
                let storage = ObjectStorage {
                    store: location.store().clone(),
                    scheme_and_authority: format!("s3://{bucket}"),
                };
                Ok((storage, format!("s3://{bucket}/{table}")))
            }
            _ => Err(SinkError::Location(format!(
                "Iceberg table location {url:?}: use file:///absolute/path or s3://bucket/prefix"
            ))),
        }
    }

    /// A `FileIO` whose every file goes through this storage.
    pub(crate) fn file_io(&self) -> FileIO {
        FileIOBuilder::new(Arc::new(ObjectStorageFactory(self.clone()))).build()
    }

    /// The object path of an absolute URL under this storage's root.
    fn path(&self, url: &str) -> Result<Path> {
        let rest = url.strip_prefix(&self.scheme_and_authority).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("{url:?} is not under {:?}", self.scheme_and_authority),
            )
        })?;
        Path::parse(rest.trim_start_matches('/'))
            .map_err(|e| Error::new(ErrorKind::DataInvalid, format!("path {url:?}: {e}")))
    }
}

/// An object store failure as iceberg sees it; a missing object is `NotFound`-like for
/// `exists` only, an error everywhere else.
fn store_error(error: object_store::Error) -> Error {
    Error::new(ErrorKind::Unexpected, "object store").with_source(error)
}

// Iceberg registers storages for serialization (typetag); this one holds a live client, which
// cannot be written down: it serializes as nothing and refuses to be read back.
impl Serialize for ObjectStorage {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for ObjectStorage {
    fn deserialize<D: Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom("an object store client cannot be deserialized"))
    }
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        match self.store.head(&self.path(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let meta = self.store.head(&self.path(path)?).await.map_err(store_error)?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let result = self.store.get(&self.path(path)?).await.map_err(store_error)?;
        result.bytes().await.map_err(store_error)
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        Ok(Box::new(ObjectRead { store: self.store.clone(), path: self.path(path)? }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let path = self.path(path)?;
        self.store.put(&path, PutPayload::from(bs)).await.map_err(store_error)?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        Ok(Box::new(ObjectWrite {
            store: self.store.clone(),
            path: self.path(path)?,
            parts: Vec::new(),
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&self.path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let prefix = self.path(path)?;
        let paths = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).boxed();
        self.store.delete_stream(paths).try_collect::<Vec<_>>().await.map_err(store_error)?;
        Ok(())
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> Result<()> {
        let paths: Vec<String> = paths.collect().await;
        for path in paths {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_owned()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_owned()))
    }
}

/// Hands iceberg the one storage of a table, whatever configuration it asks with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ObjectStorageFactory(ObjectStorage);

#[typetag::serde]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.0.clone()))
    }
}

/// Ranged reads of one object (Parquet footers, manifest lists).
struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store.get_range(&self.path, range).await.map_err(store_error)
    }
}

/// A file written in parts and put whole at `close`: iceberg's own files (manifests, metadata)
/// are small, and data files come whole from skiff-sink.
struct ObjectWrite {
    store: Arc<dyn ObjectStore>,
    path: Path,
    parts: Vec<Bytes>,
}

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        self.parts.push(bs);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let payload: PutPayload = std::mem::take(&mut self.parts).into_iter().collect();
        self.store.put(&self.path, payload).await.map_err(store_error)?;
        Ok(())
    }
}
