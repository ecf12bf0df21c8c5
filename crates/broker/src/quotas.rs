//! Client quotas enforced on this broker: produce and fetch byte rates and request time
//! (`request_percentage`, see `busy.rs`) per user and client id,
//! as Kafka enforces them (per broker; a client spread over brokers gets its quota on each).
//!
//! The cluster's quotas are one document in storage (`skiff_auth::quota::store`, changed with
//! AlterClientQuotas), of which this broker keeps a copy refreshed every `--quota-refresh-ms`
//! (`cached.rs`). Each request that moves bytes is charged its bytes, and every request its
//! busy time, to the quota entity it falls under
//! (Kafka's precedence: `skiff_auth::quota::model`); the entity's sampled rate says how long
//! the client is over its quota. That time goes back in the response's `throttle_time_ms` and
//! the connection reads nothing more from the client until it has passed (Kafka's muted
//! channel), so a client over its quota slows down whether or not it honours the field.
//!
//! Quotas are fairness, not security: if the document cannot be read, requests go on
//! unthrottled (with a warning) rather than fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skiff_auth::quota::{QuotaEntity, QuotaKind, QuotaStore, Quotas, SampledRate};
use skiff_storage::StateStore;

use crate::cached::Cached;

/// The quota flags (Kafka's `quota.window.num` and `quota.window.size.seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    /// How old this broker's copy of the quotas may grow before it is read again.
    pub refresh: Duration,
    /// Samples in a rate's window.
    pub window_samples: usize,
    /// The length of one sample.
    pub sample: Duration,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self { refresh: Duration::from_secs(1), window_samples: 11, sample: Duration::from_secs(1) }
    }
}

/// Rates kept before idle ones are dropped.
const PRUNE_ABOVE: usize = 4096;

pub(crate) struct QuotaManager {
    store: QuotaStore,
    quotas: Arc<Cached<Quotas>>,
    /// The rate charged on this broker per quota kind and usage (`QuotaEntity::usage_of`).
    rates: Mutex<HashMap<(QuotaKind, QuotaEntity), SampledRate>>,
    config: QuotaConfig,
    started: Instant,
}

impl QuotaManager {
    pub(crate) fn new(state: Arc<dyn StateStore>, config: QuotaConfig) -> Self {
        let store = QuotaStore::new(state);
        let reader = store.clone();
        let quotas = Cached::new(
            "quotas",
            config.refresh,
            Box::new(move || {
                let reader = reader.clone();
                Box::pin(async move { reader.get().await })
            }),
        );
        Self {
            store,
            quotas: Arc::new(quotas),
            rates: Mutex::new(HashMap::new()),
            config,
            started: Instant::now(),
        }
    }

    /// Where the quotas are stored (AlterClientQuotas, DescribeClientQuotas).
    pub(crate) fn store(&self) -> &QuotaStore {
        &self.store
    }

    /// The quotas to charge a request against (none if they cannot be read).
    pub(crate) async fn current(&self) -> Arc<Quotas> {
        match self.quotas.get().await {
            Ok(quotas) => quotas,
            Err(error) => {
                tracing::warn!(%error, "reading the client quotas failed: not throttling");
                Arc::default()
            }
        }
    }

    /// Reads the quotas now (after this broker changed them).
    pub(crate) async fn reload(&self) {
        if let Err(error) = self.quotas.reload().await {
            tracing::warn!(%error, "re-reading the client quotas failed: the next refresh will");
        }
    }

    /// Charges `amount` to the entity whose quota of `kind` applies to `user` and `client_id`;
    /// returns how long the client must now wait (zero without a quota or within it), at most
    /// one window, as Kafka caps it.
    pub(crate) fn charge(
        &self,
        quotas: &Quotas,
        kind: QuotaKind,
        (user, client_id): (&str, &str),
        amount: f64,
    ) -> Duration {
        let Some((entity, quota)) = quotas.lookup(kind, user, client_id) else {
            return Duration::ZERO;
        };
        let now = self.now_ms();
        let sample_ms = self.config.sample.as_millis().max(1) as u64;
        let mut rates = self.rates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if rates.len() >= PRUNE_ABOVE {
            // Users and client ids under a default quota each have a rate: forget idle ones.
            rates.retain(|_, rate| !rate.is_idle(now));
        }
        let rate = rates
            .entry((kind, entity.usage_of(user, client_id)))
            .or_insert_with(|| SampledRate::new(self.config.window_samples, sample_ms));
        rate.record(now, amount);
        let window = self.config.window_samples as u64 * sample_ms;
        Duration::from_millis(rate.throttle_ms(now, quota).min(window))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}
