use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use skiff_proxy::{NoProduceChecks, ProxyConfig};

/// Flags of `skiff proxy`; each has a `SKIFF_*` environment variable.
#[derive(Args)]
pub(crate) struct ProxyArgs {
    /// Bootstrap address to accept Kafka clients on; upstream broker n is served on port + 1 + n.
    #[arg(long, env = "SKIFF_LISTEN", default_value = "0.0.0.0:9092")]
    listen: SocketAddr,
    /// HOST:PORT clients bootstrap from; upstream broker n is advertised at port + 1 + n.
    #[arg(long, env = "SKIFF_ADVERTISED_LISTENER", default_value = "localhost:9092")]
    advertised_listener: String,
    /// Upstream bootstrap brokers, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "SKIFF_UPSTREAM", value_delimiter = ',', required = true)]
    upstream: Vec<String>,
    /// Largest request frame accepted; larger ones are refused before reading them.
    #[arg(long, env = "SKIFF_MAX_REQUEST_BYTES", default_value_t = 100 * 1024 * 1024)]
    max_request_bytes: usize,
    /// Most client connections served at once.
    #[arg(long, env = "SKIFF_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Shared, pipelined upstream connections per upstream broker (Fetch, JoinGroup and
    /// SyncGroup use a dedicated connection per client instead).
    #[arg(long, env = "SKIFF_UPSTREAM_CONNECTIONS", default_value_t = 4)]
    upstream_connections: usize,
    /// How long to wait for an upstream broker to accept a connection (milliseconds).
    #[arg(long, env = "SKIFF_UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 5000)]
    upstream_connect_timeout_ms: u64,
    /// A shared upstream connection whose oldest request has waited this long is closed and
    /// its clients disconnected (milliseconds); Fetch, JoinGroup and SyncGroup are exempt.
    #[arg(long, env = "SKIFF_UPSTREAM_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    upstream_request_timeout_ms: u64,
    /// Most upstream brokers served (each takes one proxy port).
    #[arg(long, env = "SKIFF_MAX_UPSTREAM_BROKERS", default_value_t = 64)]
    max_upstream_brokers: usize,
}

impl ProxyArgs {
    fn config(&self) -> anyhow::Result<ProxyConfig> {
        let (host, port) = self
            .advertised_listener
            .rsplit_once(':')
            .context("--advertised-listener must be HOST:PORT")?;
        let port: u16 = port.parse().context("--advertised-listener port must be a number")?;
        let upstreams: Vec<String> = self
            .upstream
            .iter()
            .map(|address| address.trim().to_owned())
            .filter(|address| !address.is_empty())
            .collect();
        for upstream in &upstreams {
            let valid =
                upstream.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok());
            if !valid {
                anyhow::bail!("--upstream {upstream}: expected HOST:PORT");
            }
        }
        Ok(ProxyConfig {
            listen: self.listen,
            advertised_host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            advertised_port: port,
            upstreams,
            max_request_bytes: self.max_request_bytes,
            max_connections: self.max_connections.max(1),
            shared_connections: self.upstream_connections.max(1),
            connect_timeout: Duration::from_millis(self.upstream_connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(self.upstream_request_timeout_ms.max(1)),
            max_upstream_brokers: self.max_upstream_brokers.max(1),
        })
    }
}

pub(crate) async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    tracing::info!(
        upstream = %config.upstreams.join(","),
        advertised = %args.advertised_listener,
        "starting proxy"
    );
    let listeners = skiff_proxy::bind(config, Arc::new(NoProduceChecks))?;
    skiff_proxy::serve(listeners, super::broker::shutdown_signal()).await?;
    Ok(())
}
