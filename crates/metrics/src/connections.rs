//! Client connections: how many are open now and how many were accepted in all.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::GaugeGuard;

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

    /// Held by the connection task while it runs.
    pub(crate) fn opened(&self) -> GaugeGuard {
        self.accepted.inc();
        GaugeGuard::hold(self.open.clone())
    }
}
