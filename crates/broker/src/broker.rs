use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use skiff_metrics::Metrics;
use skiff_storage::{Storage, StorageError};
use tokio::sync::{watch, OnceCell};

use crate::producer_ids::ProducerIds;
use crate::BrokerConfig;

/// State key of the cluster id, created once by whichever broker gets there first.
const CLUSTER_ID_KEY: &str = "cluster/id";

/// What every handler works with. Cloning is cheap; nothing here is a fact another broker
/// would need (those live in storage), only caches and wake-ups.
#[derive(Clone)]
pub struct Broker {
    pub(crate) storage: Storage,
    pub(crate) config: Arc<BrokerConfig>,
    appended: Arc<watch::Sender<u64>>,
    groups_changed: Arc<watch::Sender<u64>>,
    stopping: Arc<watch::Sender<bool>>,
    cluster_id: Arc<OnceCell<String>>,
    pub(crate) producer_ids: Arc<ProducerIds>,
    /// The Schema Registry on this broker's storage (served over HTTP only with
    /// `--schema-registry-listen`, but always consulted by produce).
    registry: Arc<skiff_registry::Registry>,
    pub(crate) validator: Arc<crate::validation::Validator>,
    /// The ACLs requests are checked against (`--authorizer acl`); `None`: no checks.
    pub(crate) authorization: Option<Arc<crate::authorization::Authorization>>,
    /// The client quotas and what each quota entity used on this broker.
    pub(crate) quotas: Arc<crate::quotas::QuotaManager>,
    /// Where requests, topics and events are counted (`--metrics-listen`); `None`: nothing is.
    metrics: Option<Arc<Metrics>>,
    /// The topic list consumer-protocol heartbeats resolve subscriptions against.
    pub(crate) group_topics: Arc<crate::cached::Cached<crate::groups::TopicList>>,
}

impl Broker {
    pub fn new(storage: Storage, config: BrokerConfig) -> Self {
        Self::with_metrics(storage, config, None)
    }

    /// A broker that records its metrics in `metrics` (storage calls are metered by wrapping
    /// `storage` with [`skiff_metrics::metered`] before, which this does not do).
    pub fn with_metrics(
        storage: Storage,
        config: BrokerConfig,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let registry_state =
            Arc::new(crate::validation::ChangeCounter::new(storage.state.clone(), metrics.clone()));
        let registry = Arc::new(skiff_registry::Registry::new(registry_state.clone()));
        let validator =
            Arc::new(crate::validation::Validator::new(registry.clone(), registry_state));
        let authorization = config.authorization.clone().map(|settings| {
            Arc::new(crate::authorization::Authorization::new(storage.state.clone(), settings))
        });
        let quotas = Arc::new(crate::quotas::QuotaManager::new(
            storage.state.clone(),
            config.quotas.clone(),
        ));
        let group_topics = Arc::new(crate::groups::topic_list_cache(storage.clone()));
        Self {
            group_topics,
            authorization,
            quotas,
            registry,
            validator,
            storage,
            config: Arc::new(config),
            appended: Arc::new(watch::Sender::new(0)),
            groups_changed: Arc::new(watch::Sender::new(0)),
            stopping: Arc::new(watch::Sender::new(false)),
            cluster_id: Arc::new(OnceCell::new()),
            producer_ids: Arc::new(ProducerIds::default()),
            metrics,
        }
    }

    /// The metrics to record in, if this broker has them.
    pub(crate) fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// The Schema Registry over this broker's storage, for serving its REST API.
    pub fn registry(&self) -> Arc<skiff_registry::Registry> {
        self.registry.clone()
    }

    /// The ACLs the Schema Registry checks subjects against: this broker's snapshot, with
    /// `--authorizer acl`.
    pub fn registry_acls(&self) -> Option<Arc<dyn skiff_registry::http::AclSource>> {
        self.authorization.as_ref().map(|authorization| authorization.for_registry())
    }

    /// The users of this broker's storage (SASL, and the Schema Registry's basic auth).
    pub fn users(&self) -> skiff_auth::Users {
        skiff_auth::Users::new(self.storage.state.clone())
    }

    /// Wakes fetches waiting on this broker for new data.
    pub(crate) fn notify_appended(&self) {
        self.appended.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that sees every later [`Self::notify_appended`].
    pub(crate) fn appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Wakes JoinGroup and SyncGroup requests waiting on this broker: a group they wait on
    /// may have changed. Changes made by other brokers are seen by polling instead.
    pub(crate) fn notify_group_changed(&self) {
        self.groups_changed.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that sees every later [`Self::notify_group_changed`].
    pub(crate) fn group_changes(&self) -> watch::Receiver<u64> {
        self.groups_changed.subscribe()
    }

    /// Tells requests that wait open-endedly (JoinGroup, SyncGroup) that the broker is shutting
    /// down, so they hand their clients to another broker instead of holding up the shutdown.
    pub(crate) fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// A receiver that turns `true` once the broker is shutting down.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// How often a waiting JoinGroup or SyncGroup re-reads its group, to see changes made
    /// through other brokers and deadlines that passed.
    pub(crate) fn group_poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    /// How often a waiting fetch re-reads storage, to see appends made by other brokers.
    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(100)
    }

    /// The cluster id, shared by every broker on this storage: read from storage, or created
    /// there by compare-and-set on first use (so two brokers racing agree on one id).
    pub(crate) async fn cluster_id(&self) -> Result<&str, StorageError> {
        let id = self
            .cluster_id
            .get_or_try_init(|| async {
                if let Some(stored) = self.storage.state.get(CLUSTER_ID_KEY).await? {
                    return Ok(String::from_utf8_lossy(&stored.value).into_owned());
                }
                let fresh = uuid::Uuid::new_v4().simple().to_string();
                match self.storage.state.put(CLUSTER_ID_KEY, Bytes::from(fresh.clone()), None).await
                {
                    Ok(_) => Ok(fresh),
                    Err(StorageError::Conflict(_)) => {
                        let stored =
                            self.storage.state.get(CLUSTER_ID_KEY).await?.ok_or_else(|| {
                                StorageError::Unavailable("cluster id vanished".into())
                            })?;
                        Ok(String::from_utf8_lossy(&stored.value).into_owned())
                    }
                    Err(other) => Err(other),
                }
            })
            .await?;
        Ok(id.as_str())
    }
}

/// `/readyz`: a broker is ready when its storage answers a read (one GET on S3, one SELECT on
/// the SQL engines; the key needs not exist).
#[async_trait::async_trait]
impl skiff_metrics::http::Readiness for Broker {
    async fn ready(&self) -> Result<(), String> {
        match self.storage.state.get(CLUSTER_ID_KEY).await {
            Ok(_) => Ok(()),
            Err(error) => Err(format!("storage: {error}")),
        }
    }
}
