//! Store-level tests on the memory engine, including registries racing on one storage.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use skiff_storage::{StateStore, StorageError, Versioned};
use skiff_storage_memory::MemoryEngine;

use crate::{Mode, NewSchema, Reference, Registry, RegistryError, SchemaType, VersionSpec};

fn storage() -> Arc<dyn StateStore> {
    MemoryEngine::storage().state
}

pub(crate) fn avro_record(name: &str, fields: &[&str]) -> String {
    let fields: Vec<String> =
        fields.iter().map(|field| format!(r#"{{"name":"{field}","type":"string"}}"#)).collect();
    format!(r#"{{"type":"record","name":"{name}","fields":[{}]}}"#, fields.join(","))
}

fn avro(text: &str) -> NewSchema {
    NewSchema { text: text.to_owned(), ..NewSchema::default() }
}

/// A state store that yields after every read, so concurrent registrations interleave between
/// reading a document and writing it back, and counts the compare-and-set conflicts that
/// causes: a race test shows the race did happen.
struct CountingConflicts {
    inner: Arc<dyn StateStore>,
    conflicts: AtomicUsize,
}

#[async_trait]
impl StateStore for CountingConflicts {
    async fn get(&self, key: &str) -> skiff_storage::Result<Option<Versioned>> {
        let value = self.inner.get(key).await;
        tokio::task::yield_now().await;
        value
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        expected: Option<u64>,
    ) -> skiff_storage::Result<u64> {
        let result = self.inner.put(key, value, expected).await;
        if matches!(result, Err(StorageError::Conflict(_))) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn delete(&self, key: &str, expected: u64) -> skiff_storage::Result<()> {
        self.inner.delete(key, expected).await
    }

    async fn list(&self, prefix: &str) -> skiff_storage::Result<Vec<(String, Versioned)>> {
        self.inner.list(prefix).await
    }
}

#[tokio::test]
async fn identical_schemas_share_one_id_across_subjects() {
    let registry = Registry::new(storage());
    let text = avro_record("User", &["name"]);
    let first = registry.register("users-value", avro(&text)).await.expect("register");
    assert_eq!((first.id, first.version), (1, 1));
    let again = registry.register("users-value", avro(&text)).await.expect("again");
    assert_eq!(again, first, "the same schema twice is one version");
    let spaced = text.replace(',', ", ");
    let other = registry.register("other-value", avro(&spaced)).await.expect("other subject");
    assert_eq!((other.id, other.version), (1, 1), "same schema, same id, its own version 1");
    registry.set(Some("users-value"), crate::Level::None).await.expect("level");
    let second = registry
        .register("users-value", avro(&avro_record("User", &["name", "email"])))
        .await
        .expect("second");
    assert_eq!((second.id, second.version), (2, 2));
    assert_eq!(registry.version_ids("users-value").await.expect("ids"), vec![(1, 1), (2, 2)]);
    let latest = registry.latest("users-value").await.expect("latest").expect("has versions");
    assert_eq!((latest.version, latest.id), (2, 2));
    assert_eq!(
        registry.subjects_of(1).await.expect("subjects"),
        vec!["other-value".to_owned(), "users-value".to_owned()]
    );
    let schema = registry.schema_by_id(2).await.expect("read").expect("exists");
    assert_eq!(schema.schema_type, SchemaType::Avro);
    assert!(registry.schema_by_id(99).await.expect("read").is_none());
}

#[tokio::test]
async fn a_serialized_protobuf_descriptor_is_the_same_schema_as_its_source() {
    let registry = Registry::new(storage());
    let protobuf = |text: String| NewSchema {
        schema_type: SchemaType::Protobuf,
        text,
        ..NewSchema::default()
    };
    let source = "syntax = \"proto3\";\npackage shop;\nmessage Order { string id = 1; }\n";
    let first =
        registry.register("orders-value", protobuf(source.to_owned())).await.expect("source");
    let stored = registry.schema_by_id(first.id).await.expect("read").expect("exists");
    let serialized = stored.schema.serialized().expect("protobuf is serialized");
    let again =
        registry.register("orders-value", protobuf(serialized.clone())).await.expect("again");
    assert_eq!(again, first, "what confluent-kafka's serializer registers is the same schema");
    let found =
        registry.lookup("orders-value", &protobuf(serialized), false).await.expect("lookup");
    assert_eq!(found.id, first.id);
}

#[tokio::test]
async fn racing_registries_get_unique_ids_and_consecutive_versions() {
    let shared = Arc::new(CountingConflicts { inner: storage(), conflicts: AtomicUsize::new(0) });
    let brokers =
        [Arc::new(Registry::new(shared.clone())), Arc::new(Registry::new(shared.clone()))];
    let mut tasks = Vec::new();
    for n in 0..24 {
        let registry = brokers[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let field = format!("f{n}");
            // NONE: every schema may follow every other, so all 24 must land.
            registry.set(Some("race"), crate::Level::None).await.expect("level");
            registry.register("race", avro(&avro_record("R", &[&field]))).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task").expect("register"));
    }
    let mut ids: Vec<i32> = results.iter().map(|r| r.id).collect();
    let mut versions: Vec<i32> = results.iter().map(|r| r.version).collect();
    ids.sort_unstable();
    ids.dedup();
    versions.sort_unstable();
    assert_eq!(ids.len(), 24, "every distinct schema has its own id");
    assert_eq!(versions, (1..=24).collect::<Vec<_>>(), "versions are 1..=24, none shared");
    assert!(shared.conflicts.load(Ordering::Relaxed) > 0, "the registrations did race");

    // The same schema from both registries at once: one id, one version.
    let text = avro_record("Same", &["x"]);
    let mut same = Vec::new();
    for n in 0..8 {
        let registry = brokers[n % 2].clone();
        let text = text.clone();
        same.push(tokio::spawn(async move { registry.register("same", avro(&text)).await }));
    }
    let mut outcomes = Vec::new();
    for task in same {
        outcomes.push(task.await.expect("task").expect("register"));
    }
    assert!(outcomes.iter().all(|outcome| *outcome == outcomes[0]), "{outcomes:?}");
    assert_eq!(brokers[1].versions("same", true).await.expect("versions"), vec![1]);
}

/// The Confluent error code of a failed call; panics (failing the test) on success.
fn code<T: std::fmt::Debug>(result: Result<T, RegistryError>) -> u32 {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

#[tokio::test]
async fn deletes_are_soft_then_permanent() {
    let registry = Registry::new(storage());
    for fields in [&["a"][..], &["a", "b"]] {
        registry.set(None, crate::Level::None).await.expect("level");
        registry.register("s", avro(&avro_record("R", fields))).await.expect("register");
    }
    assert_eq!(code(registry.delete_version("s", VersionSpec::Number(1), true).await), 40407);
    assert_eq!(registry.delete_version("s", VersionSpec::Number(1), false).await, Ok(1));
    assert_eq!(code(registry.delete_version("s", VersionSpec::Number(1), false).await), 40406);
    assert_eq!(registry.versions("s", false).await.expect("live"), vec![2]);
    assert_eq!(registry.versions("s", true).await.expect("all"), vec![1, 2]);
    assert!(registry.version("s", VersionSpec::Number(1), true).await.expect("deleted").deleted);
    assert_eq!(code(registry.version("s", VersionSpec::Number(1), false).await), 40402);
    assert_eq!(code(registry.delete_subject("s", true).await), 40405);
    assert_eq!(registry.delete_subject("s", false).await, Ok(vec![2]));
    assert_eq!(code(registry.delete_subject("s", false).await), 40404);
    assert_eq!(registry.subjects(false, "").await.expect("subjects"), Vec::<String>::new());
    assert_eq!(registry.subjects(true, "").await.expect("subjects"), vec!["s".to_owned()]);
    // Registering after a soft delete continues the numbering.
    let again = registry.register("s", avro(&avro_record("R", &["a"]))).await.expect("again");
    assert_eq!((again.id, again.version), (1, 3));
    registry.delete_subject("s", false).await.expect("soft");
    assert_eq!(registry.delete_subject("s", true).await, Ok(vec![1, 2, 3]));
    assert_eq!(code(registry.versions("s", true).await), 40401);
    assert_eq!(code(registry.delete_subject("s", false).await), 40401);
    // Ids outlive their subjects.
    assert!(registry.schema_by_id(1).await.expect("read").is_some());
}

#[tokio::test]
async fn references_must_exist_and_pin_what_they_reference() {
    let registry = Registry::new(storage());
    let address = avro_record("Address", &["street"]);
    registry.register("address", avro(&address)).await.expect("address");
    let reference =
        Reference { name: "Address".to_owned(), subject: "address".to_owned(), version: -1 };
    let user = NewSchema {
        text: r#"{"type":"record","name":"User","fields":[{"name":"home","type":"Address"}]}"#
            .to_owned(),
        references: vec![reference.clone()],
        ..NewSchema::default()
    };
    let registered = registry.register("user", user.clone()).await.expect("user");
    let stored = registry.schema_by_id(registered.id).await.expect("read").expect("exists");
    assert_eq!(stored.references[0].version, 1, "latest is stored as the concrete version");
    assert_eq!(registry.referenced_by("address", 1).await, Ok(vec![registered.id]));
    let refused = registry.delete_version("address", VersionSpec::Number(1), false).await;
    assert_eq!(refused.map_err(|error| error.code()), Err(42206));

    let missing = NewSchema { references: vec![Reference { version: 7, ..reference }], ..user };
    let invalid = registry.register("user2", missing).await;
    assert_eq!(invalid.map_err(|error| error.code()), Err(42201));

    // Once the referencing version is gone, the referenced one may go too.
    registry.delete_subject("user", false).await.expect("soft delete user");
    assert_eq!(registry.delete_version("address", VersionSpec::Number(1), false).await, Ok(1));
}

#[tokio::test]
async fn modes_and_levels_are_global_or_per_subject() {
    let registry = Registry::new(storage());
    assert_eq!(registry.global::<crate::Level>().await, Ok(crate::Level::Backward));
    assert_eq!(registry.setting::<crate::Level>(Some("s")).await, Ok(None));
    registry.set(Some("s"), crate::Level::Full).await.expect("set");
    assert_eq!(registry.effective::<crate::Level>("s").await, Ok(crate::Level::Full));
    assert_eq!(registry.unset::<crate::Level>(Some("s")).await, Ok(crate::Level::Full));
    assert_eq!(registry.unset::<crate::Level>(Some("s")).await.map_err(|e| e.code()), Err(40408));

    registry.set(None, Mode::ReadOnly).await.expect("read only");
    let refused = registry.register("s", avro(&avro_record("R", &["a"]))).await;
    assert_eq!(refused.map_err(|error| error.code()), Err(42205));
    registry.set(Some("s"), Mode::ReadWrite).await.expect("subject read-write");
    registry.register("s", avro(&avro_record("R", &["a"]))).await.expect("allowed");
    let delete = registry.delete_subject("t", false).await;
    assert_eq!(delete.map_err(|error| error.code()), Err(42205));
    assert_eq!(registry.unset::<Mode>(Some("s")).await, Ok(Mode::ReadWrite));
}

#[tokio::test]
async fn import_mode_keeps_the_given_id_and_version() {
    let registry = Registry::new(storage());
    let text = avro_record("R", &["a"]);
    let given = NewSchema { id: Some(42), version: Some(5), ..avro(&text) };
    let refused = registry.register("s", given.clone()).await;
    assert_eq!(refused.map_err(|error| error.code()), Err(42205), "not in import mode");
    registry.set(None, Mode::Import).await.expect("import");
    let imported = registry.register("s", given).await.expect("import");
    assert_eq!((imported.id, imported.version), (42, 5));
    let clash = NewSchema { id: Some(42), ..avro(&avro_record("Other", &["b"])) };
    assert_eq!(registry.register("t", clash).await.map_err(|e| e.code()), Err(42205));
    registry.set(None, Mode::ReadWrite).await.expect("read-write");
    let next = registry.register("u", avro(&avro_record("New", &["c"]))).await.expect("new");
    assert_eq!(next.id, 43, "ids continue above imported ones");
}

#[tokio::test]
async fn incompatible_versions_are_refused_with_the_reasons() {
    let registry = Registry::new(storage());
    registry.register("s", avro(&avro_record("R", &["a"]))).await.expect("first");
    // BACKWARD (the default): a new field without a default cannot read old records.
    let refused = registry.register("s", avro(&avro_record("R", &["a", "b"]))).await;
    let Err(RegistryError::Incompatible { messages, .. }) = refused else {
        panic!("expected incompatible, got {refused:?}");
    };
    assert!(messages.iter().any(|message| message.contains('b')), "{messages:?}");
    assert_eq!(registry.versions("s", false).await, Ok(vec![1]), "nothing was registered");
    let with_default = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},
        {"name":"b","type":"string","default":""}]}"#;
    let second = registry.register("s", avro(with_default)).await.expect("compatible");
    assert_eq!(second.version, 2);
    // Another type never follows, whatever the level says about schemas of one type.
    let json = NewSchema { schema_type: SchemaType::Json, ..avro(r#"{"type":"object"}"#) };
    assert_eq!(registry.register("s", json).await.map_err(|error| error.code()), Err(409));
}
