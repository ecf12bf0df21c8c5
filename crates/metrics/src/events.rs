//! Counts of things the broker did that no request or storage metric shows on its own:
//! transactions completed, schemas created in the registry, records refused before storing,
//! the consumer groups in storage, log cleaner passes, responses throttled by client quotas and
//! requests or resources denied by ACLs.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    quota: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Why produce refused records (the label of [`crate::Metrics::records_refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The record does not decode under its subject's schema (or names a wrong schema id).
    Schema,
    /// A record without a key sent to a compacted topic.
    KeylessInCompactedTopic,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Schema => "schema",
            Self::KeylessInCompactedTopic => "keyless_compacted",
        }
    }
}

pub(crate) struct Events {
    transactions: Family<OutcomeLabels, Counter>,
    schemas_created: Counter,
    records_refused: Family<ReasonLabels, Counter>,
    consumer_groups: Gauge,
    cleaner_passes: Counter,
    quota_throttles: Family<QuotaLabels, Counter>,
    authorization_denials: Family<ResourceLabels, Counter>,
}

impl Events {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let events = Self {
            transactions: Family::default(),
            schemas_created: Counter::default(),
            records_refused: Family::default(),
            consumer_groups: Gauge::default(),
            cleaner_passes: Counter::default(),
            quota_throttles: Family::default(),
            authorization_denials: Family::default(),
        };
        registry.register(
            "quota_throttles",
            "Responses this broker throttled (throttle_time_ms set, connection muted) because the client was over a quota, by quota: producer_byte_rate or consumer_byte_rate",
            events.quota_throttles.clone(),
        );
        registry.register(
            "authorization_denials",
            "Operations ACLs denied on this broker (one per resource a request was refused), by resource type",
            events.authorization_denials.clone(),
        );
        registry.register(
            "transactions_completed",
            "Transactions this broker completed (markers written, offsets committed), by outcome: commit or abort",
            events.transactions.clone(),
        );
        registry.register(
            "registry_schemas_created",
            "Schemas this broker stored under a new id in the Schema Registry",
            events.schemas_created.clone(),
        );
        registry.register(
            "records_refused",
            "Records produce refused before storing anything of their batch, by reason",
            events.records_refused.clone(),
        );
        registry.register(
            "consumer_groups",
            "Consumer groups in storage (with group state or committed offsets), as this broker last counted them",
            events.consumer_groups.clone(),
        );
        registry.register(
            "cleaner_passes",
            "Log cleaner passes (retention and compaction over every topic) this broker completed while holding the cleaner lease",
            events.cleaner_passes.clone(),
        );
        events
    }

    pub(crate) fn quota_throttled(&self, quota: &'static str) {
        self.quota_throttles.get_or_create(&QuotaLabels { quota }).inc();
    }

    pub(crate) fn authorization_denied(&self, resource_type: &'static str) {
        self.authorization_denials.get_or_create(&ResourceLabels { resource_type }).inc();
    }

    pub(crate) fn cleaner_pass(&self) {
        self.cleaner_passes.inc();
    }

    pub(crate) fn transaction_completed(&self, commit: bool) {
        let outcome = if commit { "commit" } else { "abort" };
        self.transactions.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn schema_created(&self) {
        self.schemas_created.inc();
    }

    pub(crate) fn consumer_groups(&self, count: usize) {
        self.consumer_groups.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(crate) fn records_refused(&self, reason: Refusal, count: usize) {
        let labels = ReasonLabels { reason: reason.label() };
        self.records_refused.get_or_create(&labels).inc_by(count as u64);
    }
}
