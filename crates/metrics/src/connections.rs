//! Client connections: how many are open now and how many were accepted in all.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub(crate) struct Connections {
    open: Gauge,
    accepted: Counter,
}

impl Connections {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let connections = Self { open: Gauge::default(), accepted: Counter::default() };
        registry.register(
            "connections_open",
            "Client connections open now",
            connections.open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Client connections accepted since start",
            connections.accepted.clone(),
        );
        connections
    }

    pub(crate) fn opened(&self) -> ConnectionGuard {
        self.accepted.inc();
        self.open.inc();
        ConnectionGuard { open: self.open.clone() }
    }
}

/// Held by a connection task while it runs: dropping it, however the task ends, counts the
/// connection as closed, so the gauge cannot drift on an error path.
#[must_use = "the connection counts as open only while this is held"]
pub struct ConnectionGuard {
    open: Gauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}
