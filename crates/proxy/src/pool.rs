//! Upstream connections: a small shared pool per upstream broker, and dedicated connections.
//!
//! Kafka handles one request at a time per connection, in order. Requests that answer quickly
//! (Produce, Metadata, offsets, heartbeats, ...) from many clients are pipelined over a few shared
//! connections per broker; each client connection is pinned to one slot of that pool, so its own
//! requests keep their order upstream. Requests that may wait on purpose (Fetch long-polls,
//! JoinGroup and SyncGroup rebalances) would stall everyone behind them on a shared connection, so
//! each client gets a dedicated upstream connection for those (see [`crate::routing`]).
//!
//! Connections are opened lazily, on the first request that needs one, and a dead pooled
//! connection is replaced on the next request that asks for its slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;
use tracing::debug;

use crate::error::ProxyError;
use crate::sasl::UpstreamSasl;
use crate::upstream::UpstreamConnection;

type Slot = AsyncMutex<Option<Arc<UpstreamConnection>>>;

pub(crate) struct UpstreamPool {
    bootstrap: Vec<Arc<str>>,
    shared_per_broker: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    /// The proxy's login, done on every connection before it carries requests.
    login: Option<Arc<UpstreamSasl>>,
    brokers: Mutex<HashMap<Arc<str>, Arc<[Slot]>>>,
    next_slot: AtomicUsize,
    next_bootstrap: AtomicUsize,
}

impl UpstreamPool {
    pub(crate) fn new(
        bootstrap: Vec<Arc<str>>,
        shared_per_broker: usize,
        connect_timeout: Duration,
        request_timeout: Duration,
        login: Option<Arc<UpstreamSasl>>,
    ) -> Self {
        Self {
            bootstrap,
            shared_per_broker: shared_per_broker.max(1),
            connect_timeout,
            request_timeout,
            login,
            brokers: Mutex::new(HashMap::new()),
            next_slot: AtomicUsize::new(0),
            next_bootstrap: AtomicUsize::new(0),
        }
    }

    /// The slot a new client connection uses for all its shared-lane requests.
    pub(crate) fn assign_slot(&self) -> usize {
        self.next_slot.fetch_add(1, Ordering::Relaxed) % self.shared_per_broker
    }

    /// The live shared connection in `slot` for `address`, opening one if needed.
    pub(crate) async fn shared(
        &self,
        address: &Arc<str>,
        slot: usize,
    ) -> Result<Arc<UpstreamConnection>, ProxyError> {
        let slots = {
            let mut brokers = self.brokers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            brokers
                .entry(address.clone())
                .or_insert_with(|| {
                    (0..self.shared_per_broker).map(|_| AsyncMutex::new(None)).collect()
                })
                .clone()
        };
        let Some(slot) = slots.get(slot % slots.len()) else {
            return Err(ProxyError::Config("empty upstream pool".to_owned()));
        };
        // Held across the connect, so concurrent clients wait for one connection, not open many.
        let mut current = slot.lock().await;
        if let Some(connection) = current.as_ref().filter(|connection| connection.is_alive()) {
            return Ok(connection.clone());
        }
        let connection = UpstreamConnection::connect(
            address.clone(),
            self.connect_timeout,
            Some(self.request_timeout),
            self.login.as_deref(),
        )
        .await?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    /// A new connection used by one client only.
    pub(crate) async fn dedicated(
        &self,
        address: &Arc<str>,
    ) -> Result<Arc<UpstreamConnection>, ProxyError> {
        // No request timeout: long polls live here, and the client closes this connection
        // (and so this upstream connection) when its own request timeout passes.
        UpstreamConnection::connect(
            address.clone(),
            self.connect_timeout,
            None,
            self.login.as_deref(),
        )
        .await
    }

    /// For a bootstrap-port client: the first upstream from `--upstream` (starting with the one
    /// that worked last) whose shared connection in `slot` is up.
    pub(crate) async fn any_bootstrap(
        &self,
        slot: usize,
    ) -> Result<Arc<UpstreamConnection>, ProxyError> {
        let count = self.bootstrap.len();
        let start = self.next_bootstrap.load(Ordering::Relaxed);
        let mut last_error = ProxyError::Config("no upstream brokers configured".to_owned());
        for attempt in 0..count {
            let index = (start + attempt) % count;
            let Some(address) = self.bootstrap.get(index) else { continue };
            match self.shared(address, slot).await {
                Ok(connection) => {
                    self.next_bootstrap.store(index, Ordering::Relaxed);
                    return Ok(connection);
                }
                Err(error) => {
                    debug!(upstream = %address, %error, "bootstrap upstream unavailable");
                    last_error = error;
                }
            }
        }
        Err(last_error)
    }
}
